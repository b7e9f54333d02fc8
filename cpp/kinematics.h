// Kinematic helpers for analyses. Computed in double precision whatever the input type
// (float inputs would round near bin edges and disagree with double-precision checks).
#ifndef ANALYSIS_KINEMATICS_H
#define ANALYSIS_KINEMATICS_H

#include <Math/Vector4D.h>
#include <ROOT/RVec.hxx>

#include <algorithm>
#include <cmath>
#include <limits>

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

// Four-momentum sums in Cartesian coordinates, in double; the helpers below share it so that
// an independent numpy computation with the same formulas agrees bin for bin.
struct Momentum {
   double px = 0., py = 0., pz = 0., e = 0.;
   void Add(double pt, double eta, double phi, double m)
   {
      const double x = pt * std::cos(phi), y = pt * std::sin(phi), z = pt * std::sinh(eta);
      px += x;
      py += y;
      pz += z;
      e += std::sqrt(x * x + y * y + z * z + m * m);
   }
   double Mass() const { return std::sqrt(std::max(e * e - px * px - py * py - pz * pz, 0.)); }
   double Pt() const { return std::sqrt(px * px + py * py); }
};

// The system of the objects at `idx` of a collection.
template <typename T, typename U, typename V, typename W, typename I>
Momentum system_of(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                   const ROOT::RVec<W> &mass, const ROOT::RVec<I> &idx)
{
   Momentum sum;
   for (auto i : idx)
      sum.Add(pt[i], eta[i], phi[i], mass[i]);
   return sum;
}

template <typename T, typename U, typename V, typename W, typename I>
double system_pt(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                 const ROOT::RVec<W> &mass, const ROOT::RVec<I> &idx)
{
   return idx.empty() ? -1. : system_of(pt, eta, phi, mass, idx).Pt();
}

template <typename T, typename U, typename V, typename W, typename I>
double system_mass(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                   const ROOT::RVec<W> &mass, const ROOT::RVec<I> &idx)
{
   return idx.empty() ? -1. : system_of(pt, eta, phi, mass, idx).Mass();
}

// Largest value among the objects at `idx`; -inf when idx is empty.
template <typename T, typename I>
double max_at(const ROOT::RVec<T> &values, const ROOT::RVec<I> &idx)
{
   double best = -std::numeric_limits<double>::infinity();
   for (auto i : idx)
      best = std::max(best, double(values[i]));
   return best;
}

// Is there an opposite-charge pair with low < mass < high?
template <typename T, typename U, typename V, typename W, typename C>
bool has_opposite_pair_in_mass_window(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                                      const ROOT::RVec<W> &mass, const ROOT::RVec<C> &charge, double low, double high)
{
   for (std::size_t i = 0; i < pt.size(); ++i)
      for (std::size_t j = i + 1; j < pt.size(); ++j) {
         if (charge[i] == charge[j])
            continue;
         Momentum sum;
         sum.Add(pt[i], eta[i], phi[i], mass[i]);
         sum.Add(pt[j], eta[j], phi[j], mass[j]);
         const double m = sum.Mass();
         if (m > low && m < high)
            return true;
      }
   return false;
}

// Indices (i < j < k) of the three objects whose invariant mass is closest to `target`;
// empty with fewer than three objects. The first such triple wins ties.
template <typename T, typename U, typename V, typename W>
ROOT::RVecI trijet_closest_to_mass(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                                   const ROOT::RVec<W> &mass, double target)
{
   ROOT::RVecI best;
   double distance = std::numeric_limits<double>::infinity();
   const int n = pt.size();
   for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j)
         for (int k = j + 1; k < n; ++k) {
            Momentum sum;
            sum.Add(pt[i], eta[i], phi[i], mass[i]);
            sum.Add(pt[j], eta[j], phi[j], mass[j]);
            sum.Add(pt[k], eta[k], phi[k], mass[k]);
            const double d = std::abs(sum.Mass() - target);
            if (d < distance) {
               distance = d;
               best = {i, j, k};
            }
         }
   return best;
}

// Indices of the three objects, at least one of them tagged, whose system has the largest pT.
template <typename T, typename U, typename V, typename W, typename B>
ROOT::RVecI trijet_max_pt_with_tag(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                                   const ROOT::RVec<W> &mass, const ROOT::RVec<B> &tagged)
{
   ROOT::RVecI best;
   double highest = -1.;
   const int n = pt.size();
   for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j)
         for (int k = j + 1; k < n; ++k) {
            if (!(tagged[i] || tagged[j] || tagged[k]))
               continue;
            Momentum sum;
            sum.Add(pt[i], eta[i], phi[i], mass[i]);
            sum.Add(pt[j], eta[j], phi[j], mass[j]);
            sum.Add(pt[k], eta[k], phi[k], mass[k]);
            if (sum.Pt() > highest) {
               highest = sum.Pt();
               best = {i, j, k};
            }
         }
   return best;
}

// True for each object farther than `dr` from every object of the other collection.
template <typename T, typename U, typename V, typename W>
ROOT::RVec<bool> delta_r_clean(const ROOT::RVec<T> &eta, const ROOT::RVec<U> &phi, const ROOT::RVec<V> &other_eta,
                               const ROOT::RVec<W> &other_phi, double dr)
{
   ROOT::RVec<bool> keep(eta.size(), true);
   for (std::size_t i = 0; i < eta.size(); ++i)
      for (std::size_t j = 0; j < other_eta.size() && keep[i]; ++j) {
         const double deta = double(eta[i]) - double(other_eta[j]);
         double dphi = std::abs(double(phi[i]) - double(other_phi[j]));
         if (dphi > M_PI)
            dphi = 2. * M_PI - dphi;
         keep[i] = deta * deta + dphi * dphi >= dr * dr;
      }
   return keep;
}

// Mass of the objects at `idx` from (pt, eta, phi, energy), as flat ntuples store leptons.
template <typename T, typename U, typename V, typename W, typename I>
double system_mass_from_energy(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                               const ROOT::RVec<W> &energy, const ROOT::RVec<I> &idx)
{
   if (idx.empty())
      return -1.;
   double px = 0., py = 0., pz = 0., e = 0.;
   for (auto i : idx) {
      px += pt[i] * std::cos(double(phi[i]));
      py += pt[i] * std::sin(double(phi[i]));
      pz += pt[i] * std::sinh(double(eta[i]));
      e += energy[i];
   }
   return std::sqrt(std::max(e * e - px * px - py * py - pz * pz, 0.));
}

// Exactly four objects paired into two same-flavour opposite-charge pairs: indices
// {Z1 a, Z1 b, Z2 a, Z2 b}, Z1 the pair closest to `target`; empty when no pairing works.
template <typename T, typename U, typename V, typename W, typename C, typename F>
ROOT::RVecI zz_pairing(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                       const ROOT::RVec<W> &energy, const ROOT::RVec<C> &charge, const ROOT::RVec<F> &flavour,
                       double target)
{
   if (pt.size() != 4)
      return {};
   static const int pairings[3][4] = {{0, 1, 2, 3}, {0, 2, 1, 3}, {0, 3, 1, 2}};
   ROOT::RVecI best;
   double distance = std::numeric_limits<double>::infinity();
   for (const auto &q : pairings) {
      bool valid = true;
      for (int k = 0; k < 4; k += 2)
         valid = valid && flavour[q[k]] == flavour[q[k + 1]] && charge[q[k]] != charge[q[k + 1]];
      if (!valid)
         continue;
      for (int first = 0; first < 4; first += 2) {
         const ROOT::RVecI pair{q[first], q[first + 1]};
         const double d = std::abs(system_mass_from_energy(pt, eta, phi, energy, pair) - target);
         if (d < distance) {
            distance = d;
            best = {q[first], q[first + 1], q[2 - first], q[3 - first]};
         }
      }
   }
   return best;
}

// Indices (i < j) of the same-flavour opposite-charge pair whose mass is closest to `target`; empty if none.
template <typename T, typename U, typename V, typename W, typename C, typename F>
ROOT::RVecI sfos_pair_closest_to_mass(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                                      const ROOT::RVec<W> &mass, const ROOT::RVec<C> &charge,
                                      const ROOT::RVec<F> &flavour, double target)
{
   ROOT::RVecI best;
   double distance = std::numeric_limits<double>::infinity();
   const int n = pt.size();
   for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) {
         if (flavour[i] != flavour[j] || charge[i] == charge[j])
            continue;
         Momentum sum;
         sum.Add(pt[i], eta[i], phi[i], mass[i]);
         sum.Add(pt[j], eta[j], phi[j], mass[j]);
         const double d = std::abs(sum.Mass() - target);
         if (d < distance) {
            distance = d;
            best = {i, j};
         }
      }
   return best;
}

// Index of the highest-pT object not in `idx`; -1 if there is none.
template <typename T, typename I>
int leading_excluding(const ROOT::RVec<T> &pt, const ROOT::RVec<I> &idx)
{
   int best = -1;
   for (int i = 0; i < int(pt.size()); ++i) {
      if (std::find(idx.begin(), idx.end(), i) != idx.end())
         continue;
      if (best < 0 || pt[i] > pt[best])
         best = i;
   }
   return best;
}

// Transverse mass of object `i` with the missing transverse momentum; -1 when i < 0.
template <typename T, typename U>
double transverse_mass(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &phi, int i, double met, double met_phi)
{
   if (i < 0)
      return -1.;
   return std::sqrt(2. * double(pt[i]) * met * (1. - std::cos(double(phi[i]) - met_phi)));
}

} // namespace kin

#endif
