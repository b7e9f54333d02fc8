"""The cross-check of the HistFactory export with ROOT (run in its own process by test_stats.py):
`python histfactory_root_fit.py EXPORTS/histfactory` builds the RooFit workspace with
HistoToWorkspaceFactoryFast, fits mu with Minuit2 (MIGRAD + HESSE) and prints {mu, mu_err, q0} as JSON.

The ROOT 6.40 wheel has no HistFactory XML parser (ConfigParser needs libXMLParser, not shipped), so
the XML is read here with ElementTree into HistFactory's Measurement/Channel/Sample, element by element.
As pyhf's model: interpolation codes 4 (pyhf's code4 for OverallSys, code4p for HistoSys), no clipping of
interpolated yields at zero (PiecewiseInterpolation's positive-definite option off), and the staterror
constraints' global observables unbounded (HistFactory's range [0, 10] truncates the Gaussian of a bin
with a large MC uncertainty, a 1e-3 shift of its likelihood).
"""

import json
import os
import sys
import warnings
import xml.etree.ElementTree as ET

warnings.simplefilter("ignore", UserWarning)  # the ROOT wheel's 'alpha stage' notice
os.chdir(sys.argv[1])
import ROOT

ROOT.gROOT.SetBatch(True)
ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.WARNING)
HF = ROOT.RooStats.HistFactory


def measurement():
    top = ET.parse("combination.xml").getroot()
    me = top.find("Measurement")
    m = HF.Measurement(me.get("Name"), "")
    m.SetPOI(me.find("POI").text)
    m.SetLumi(float(me.get("Lumi")))
    m.SetLumiRelErr(float(me.get("LumiRelErr")))
    for p in me.findall("ParamSetting"):
        if p.get("Const") == "True":
            for n in p.text.split():
                m.AddConstantParam(n)
    for inp in top.findall("Input"):
        ce = ET.parse(inp.text).getroot()
        f = ce.get("InputFile")
        c = HF.Channel(ce.get("Name"), f)
        d = ce.find("Data")
        c.SetData(d.get("HistoName"), f, d.get("HistoPath"))
        cfg = ce.find("StatErrorConfig")
        if cfg is not None:
            c.SetStatErrorConfig(float(cfg.get("RelErrorThreshold")), cfg.get("ConstraintType"))
        for se in ce.findall("Sample"):
            s = HF.Sample(se.get("Name"), se.get("HistoName"), f, se.get("HistoPath"))
            s.SetNormalizeByTheory(se.get("NormalizeByTheory") == "True")
            for e in se:
                if e.tag == "NormFactor":
                    s.AddNormFactor(e.get("Name"), float(e.get("Val")), float(e.get("Low")), float(e.get("High")))
                elif e.tag == "OverallSys":
                    s.AddOverallSys(e.get("Name"), float(e.get("Low")), float(e.get("High")))
                elif e.tag == "HistoSys":
                    s.AddHistoSys(
                        e.get("Name"),
                        e.get("HistoNameLow"),
                        f,
                        e.get("HistoPathLow"),
                        e.get("HistoNameHigh"),
                        f,
                        e.get("HistoPathHigh"),
                    )
                elif e.tag == "StatError" and e.get("Activate") == "True":
                    s.ActivateStatError()
            c.AddSample(s)
        m.AddChannel(c)
    m.CollectHistograms()
    return m


m = measurement()
ws = HF.HistoToWorkspaceFactoryFast.MakeCombinedModel(m)
for f in ws.allFunctions():
    if isinstance(f, (HF.FlexibleInterpVar, ROOT.PiecewiseInterpolation)):
        f.setAllInterpCodes(4)  # pyhf's code4 (normsys) and code4p (histosys)
    if isinstance(f, ROOT.PiecewiseInterpolation):
        f.setPositiveDefinite(False)  # pyhf does not clip a sample's bin at zero
mc = ws.obj("ModelConfig")
data = ws.data("obsData")
pdf = mc.GetPdf()
mu = ws.var("mu")
for g in mc.GetGlobalObservables():
    g.setRange(-100.0, 100.0)  # HistFactory's [0, 10] truncates the staterror Gaussians; pyhf's are not
snap = ws.allVars().snapshot()


def minimum(fixed):
    ws.allVars().assign(snap)
    mu.setVal(1.0 if fixed is None else fixed)
    mu.setConstant(fixed is not None)
    nll = pdf.createNLL(data, ROOT.RooFit.GlobalObservables(mc.GetGlobalObservables()))
    mini = ROOT.RooMinimizer(nll)
    mini.setPrintLevel(-1)
    mini.setStrategy(1)
    mini.setEps(1e-3)
    mini.minimize("Minuit2", "Migrad")
    mini.hesse()
    return nll.getVal()


best = minimum(None)
mu_hat, mu_err = mu.getVal(), mu.getError()
q0 = 2 * (minimum(0.0) - best)
print(json.dumps({"mu": mu_hat, "mu_err": mu_err, "q0": q0}))
