// The page: what the model knows, one or two predicted responses, and the screen (screen.js).

import { activitiesOf, api, clearError, genesOf, outOfDomain, showError } from "./api.js";
import { combobox } from "./combobox.js";
import { activityBars, fmt, scatter, widthOf } from "./plots.js";
import { setupScreen } from "./screen.js";

const $ = (id) => document.getElementById(id);
const TOP_GENES = 15; // rows of the top-genes table and labels in the volcano

function geneName(g) {
  return typeof g === "string" ? g : g.gene || g.name;
}

function fillSelect(select, names) {
  select.replaceChildren(
    ...names.map((name) => {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      return option;
    }),
  );
}

function count(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function summarise(model) {
  const parts = [];
  if (model.name) parts.push(`Model ${model.name}`);
  parts.push(count((model.perturbations || []).length, "trained perturbation"));
  parts.push(count(model.n_genes, "gene"));
  parts.push(count((model.contexts || []).length, "context"));
  const priors = [].concat(model.priors || []).filter(Boolean);
  if (priors.length) parts.push(`priors: ${priors.join(", ")}`);
  if (model.represents_prior_genes) parts.push("any gene in the priors can be asked about");
  return parts.join(" · ");
}

// ---- one prediction ------------------------------------------------------------------------

function hasIntervals(genes) {
  return genes.some((g) => Number.isFinite(g.lower) && Number.isFinite(g.upper));
}

function topGenes(result) {
  const byName = new Map(result.genes.map((g) => [g.gene, g]));
  const named = (result.top_genes || []).map(geneName).filter((n) => byName.has(n));
  if (named.length) return named.slice(0, TOP_GENES).map((n) => byName.get(n));
  return [...result.genes].sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect)).slice(0, TOP_GENES);
}

function tip(g) {
  const interval = Number.isFinite(g.lower) ? ` [${fmt(g.lower)}, ${fmt(g.upper)}]` : "";
  return `${g.gene}: effect ${fmt(g.effect)}${interval}`;
}

function sign(effect) {
  return effect > 0 ? "up" : effect < 0 ? "down" : "";
}

// Volcano when the model gives intervals (height: |effect| / interval half-width), otherwise
// the effects in rank order.
function responsePlot(result, labelled, width) {
  const names = new Set(labelled.map((g) => g.gene));
  const rank = (p) => (names.has(p.name) ? 1 : 0) + Math.abs(p.x) * 1e-9;
  if (hasIntervals(result.genes)) {
    const points = result.genes.map((g) => {
      const half = Math.max((g.upper - g.lower) / 2, 1e-9);
      return { x: g.effect, y: Math.abs(g.effect) / half, name: g.gene, cls: sign(g.effect), tip: tip(g) };
    });
    const caption = "Each dot a gene (orange: up, blue: down): predicted effect against its size in interval half-widths; the top genes are named.";
    const svg = scatter(points, {
      xLabel: "predicted effect (log1p vs control)",
      yLabel: "|effect| / interval half-width",
      label: labelled.length,
      rank,
      title: `Volcano plot of ${result.perturbation}`,
      width,
      lines: [[[0, 0], [0, Math.max(...points.map((p) => p.y).filter(Number.isFinite), 1)]]],
    });
    return { svg, caption };
  }
  const sorted = [...result.genes].sort((a, b) => b.effect - a.effect);
  const points = sorted.map((g, i) => ({ x: i + 1, y: g.effect, name: g.gene, cls: sign(g.effect), tip: tip(g) }));
  const svg = scatter(points, {
    xLabel: "gene rank (largest increase first)",
    yLabel: "predicted effect (log1p vs control)",
    label: labelled.length,
    rank: (p) => (names.has(p.name) ? 1 : 0),
    title: `Ranked predicted effects of ${result.perturbation}`,
    width,
    lines: [[[0, 0], [points.length + 1, 0]]],
  });
  return { svg, caption: "This model gives no intervals: each dot a gene, in order of its predicted effect (orange: up, blue: down); the top genes are named." };
}

function genesTable(genes, caption) {
  const intervals = hasIntervals(genes);
  const table = document.createElement("table");
  table.className = "genes";
  table.createCaption().textContent = caption;
  const head = table.createTHead().insertRow();
  for (const name of ["Gene", "Effect", ...(intervals ? ["Interval"] : [])]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    if (name !== "Gene") th.className = "num";
    head.append(th);
  }
  const body = table.createTBody();
  for (const g of genes) {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = g.gene;
    row.append(th);
    const effect = row.insertCell();
    effect.textContent = fmt(g.effect);
    effect.className = `num ${sign(g.effect)}`;
    if (!intervals) continue;
    const interval = row.insertCell();
    interval.className = "num";
    interval.textContent = Number.isFinite(g.lower) ? `${fmt(g.lower)} to ${fmt(g.upper)}` : "–";
  }
  return table;
}

function figure(caption, extra = "") {
  const fig = document.createElement("figure");
  fig.className = `plot ${extra}`;
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(cap);
  return fig;
}

function panel(result) {
  const section = document.createElement("article");
  section.className = "panel";
  const h = document.createElement("h3");
  h.textContent = `${result.perturbation} in ${result.context}${result.dose ? ` at dose ${result.dose}` : ""}`;
  const meta = document.createElement("p");
  meta.className = "meta";
  const inDomain = Number.isFinite(result.in_domain) ? fmt(result.in_domain, 2) : "not given";
  meta.textContent = `Source: ${result.source || "model"} · in-domain score: ${inDomain}`;
  section.append(h, meta);
  if (result.out_of_domain) {
    const warn = document.createElement("p");
    warn.className = "warning";
    warn.setAttribute("role", "alert");
    warn.textContent = `Out of domain: ${result.perturbation} in ${result.context} is unlike what this model was trained on (in-domain score ${inDomain}). Treat this prediction with caution.`;
    section.append(warn);
  }
  const top = topGenes(result);
  const response = figure("", "response");
  const activities = figure("Regulator and pathway activities (orange: raised, blue: lowered)");
  section.append(response);
  section.append(genesTable(top, `Top ${top.length} genes${hasIntervals(result.genes) ? ", with their intervals" : " (this model gives no intervals)"}`));
  section.append(activities);
  // Charts are drawn at the width they get on the page, so their text keeps its size.
  const draw = () => {
    const plot = responsePlot(result, top, widthOf(response));
    response.firstChild.textContent = plot.caption;
    response.append(plot.svg);
    activities.append(activityBars(result.activities || [], `Activities of ${result.perturbation}`, widthOf(activities)));
  };
  return { section, draw };
}

function compare(a, b) {
  const byName = new Map(b.genes.map((g) => [g.gene, g.effect]));
  const points = a.genes
    .filter((g) => byName.has(g.gene))
    .map((g) => {
      const y = byName.get(g.gene);
      const cls = g.effect * y < 0 ? "disagree" : sign(g.effect + y);
      return { x: g.effect, y, name: g.gene, cls, tip: `${g.gene}: ${fmt(g.effect)} vs ${fmt(y)}` };
    });
  const lo = Math.min(...points.map((p) => Math.min(p.x, p.y)), 0);
  const hi = Math.max(...points.map((p) => Math.max(p.x, p.y)), 0);
  const svg = scatter(points, {
    xLabel: `effect of ${a.perturbation}`,
    yLabel: `effect of ${b.perturbation}`,
    label: 10,
    rank: (p) => Math.abs(p.x) + Math.abs(p.y),
    title: `Effects of ${a.perturbation} against ${b.perturbation}`,
    width: widthOf($("compare-figure")),
    lines: [[[lo, lo], [hi, hi]]],
  });
  $("compare-caption").textContent = `${a.perturbation} against ${b.perturbation}, one dot per gene (orange: both up, blue: both down, purple: opposite ways; dashed line: equal effects; Pearson r = ${fmt(pearson(points), 2)}).`;
  $("compare-plot").replaceChildren(svg);
  $("compare-figure").hidden = false;
}

function pearson(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
    syy += (p.y - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

// ---- the predict form ----------------------------------------------------------------------

async function predict() {
  const box = $("predict-error");
  clearError(box);
  const context = $("context").value;
  const names = [$("pert-a").value.trim(), $("pert-b").value.trim()].filter(Boolean);
  if (!names.length) {
    showError(box, new Error("pick a perturbation first: type its name and choose it from the list."));
    $("pert-a").focus();
    return;
  }
  const dose = $("dose").value.trim();
  const body = (perturbation) => ({ context, perturbation, ...(dose ? { dose: Number(dose) } : {}) });
  $("predict-status").textContent = `Predicting ${names.join(" and ")} in ${context}…`;
  $("predict-button").disabled = true;
  try {
    const answers = await Promise.all(names.map((p) => api("/predict", { method: "POST", body: body(p) })));
    const results = answers.map((r) => ({ ...r, genes: genesOf(r), activities: activitiesOf(r), out_of_domain: outOfDomain(r) }));
    const panels = results.map(panel);
    $("panels").replaceChildren(...panels.map((p) => p.section));
    $("panels").classList.toggle("two", results.length === 2);
    $("compare-figure").hidden = results.length !== 2;
    $("predict-results").hidden = false;
    for (const p of panels) p.draw();
    if (results.length === 2) compare(...results);
    $("predict-status").textContent = `Predicted ${names.join(" and ")} in ${context}.`;
  } catch (error) {
    $("predict-status").textContent = "";
    showError(box, error, (name) => {
      const quoted = (n) => error.message.includes(`'${n}'`);
      const which = names.length === 2 && quoted(names[1]) && !quoted(names[0]) ? "pert-b" : "pert-a";
      $(which).value = name;
      predict();
    });
  } finally {
    $("predict-button").disabled = false;
  }
}

function showPrediction(context, perturbation, dose = null) {
  $("context").value = context;
  $("pert-a").value = perturbation;
  $("pert-b").value = "";
  $("dose").value = Number.isFinite(dose) ? String(dose) : "";
  $("predict").scrollIntoView();
  predict();
}

async function start() {
  const search = async (q) => (await api(`/perturbations?q=${encodeURIComponent(q)}&limit=20`)).items;
  let doses = {};
  // The dose box says how far the picked perturbation was measured (when the model has doses).
  const onPick = (item) => {
    const most = doses[item.name];
    $("dose").placeholder = Number.isFinite(most) ? `up to ${fmt(most)}` : "";
    $("dose").title = Number.isFinite(most) ? `${item.name} was measured up to dose ${fmt(most)}` : "";
  };
  combobox($("pert-a"), $("pert-a-list"), { search, onPick });
  combobox($("pert-b"), $("pert-b-list"), { search });
  $("predict-form").addEventListener("submit", (event) => {
    event.preventDefault();
    predict();
  });
  let model;
  try {
    model = await api("/model");
  } catch (error) {
    $("model-summary").textContent = "The model could not be loaded.";
    showError($("predict-error"), error);
    return;
  }
  $("model-summary").textContent = summarise(model);
  doses = model.doses || {};
  if (model.benchmark) {
    // As the model folder's benchmark.json holds it (its layout is the benchmark's own).
    $("benchmark-text").textContent = JSON.stringify(model.benchmark, null, 2).slice(0, 20000);
    $("benchmark").hidden = false;
  }
  fillSelect($("context"), model.contexts || []);
  fillSelect($("screen-context"), model.contexts || []);
  if (model.represents_prior_genes) $("pert-a").placeholder = "any measured perturbation or prior gene";
  setupScreen(model, { showPrediction });
  document.body.dataset.ready = "true";
}

start();
