// Kinematic helpers for analyses. Computed in double precision whatever the input type
// (float inputs would round near bin edges and disagree with double-precision checks).
#ifndef ANALYSIS_KINEMATICS_H
#define ANALYSIS_KINEMATICS_H

#include <Math/Vector4D.h>
#include <ROOT/RVec.hxx>

namespace kin {

// Invariant mass of the first two objects of a collection; -1 when there are fewer.
template <typename T, typename U, typename V, typename W>
double leading_pair_mass(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                         const ROOT::RVec<W> &mass)
{
   if (pt.size() < 2)
      return -1.;
   ROOT::Math::PtEtaPhiMVector a(pt[0], eta[0], phi[0], mass[0]), b(pt[1], eta[1], phi[1], mass[1]);
   return (a + b).M();
}

// Scalar sum of a collection's transverse momenta, in double.
template <typename T>
double scalar_sum(const ROOT::RVec<T> &pt)
{
   double sum = 0.;
   for (auto x : pt)
      sum += x;
   return sum;
}

} // namespace kin

#endif
