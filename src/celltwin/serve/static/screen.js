// The screen: candidates and an objective in, a background job watched until it ends, the ranked
// hits as a table (and CSV), and the explanation of a hit.

import { activitiesOf, api, clearError, showError } from "./api.js";
import { activityBars, fmt, widthOf } from "./plots.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 400;

// The objectives the page knows how to ask for; `params` says which boxes it reads and how.
// The server's /model may list fewer (then only those are offered) or describe them itself.
const OBJECTIVES = {
  move: {
    label: "Move genes the desired way",
    help: "Candidates that raise the first genes and lower the second ones.",
    up: "Genes to raise",
    down: "Genes to lower",
    params: (up, down) => ({ up, down }),
  },
  reverse: {
    label: "Reverse a signature",
    help: "Candidates whose predicted effect is opposite to a query signature (connectivity, most negative first). The query needs at least 10 of the model's genes.",
    up: "Query signature: genes up",
    down: "Query signature: genes down",
    params: (up, down) => ({ query: signature(up, down) }),
  },
  mimic: {
    label: "Mimic a signature",
    help: "Candidates whose predicted effect matches a query signature (connectivity, most positive first). The query needs at least 10 of the model's genes.",
    up: "Query signature: genes up",
    down: "Query signature: genes down",
    params: (up, down) => ({ query: signature(up, down) }),
  },
  specific: {
    label: "Largest confident change",
    help: "Candidates with the largest predicted change of any gene relative to its uncertainty.",
    params: () => ({}),
  },
};

function signature(up, down) {
  return Object.fromEntries([...up.map((g) => [g, 1]), ...down.map((g) => [g, -1])]);
}

export function parseGenes(text) {
  return [...new Set(text.split(/[\s,;]+/).map((g) => g.trim()).filter(Boolean))];
}

function objectiveNames(model) {
  const served = (model.objectives || []).map((o) => (typeof o === "string" ? o : o.name));
  const known = Object.keys(OBJECTIVES);
  return served.length ? known.filter((n) => served.includes(n)) : known;
}

function showParams() {
  const spec = OBJECTIVES[$("objective").value];
  $("objective-help").textContent = spec.help;
  $("param-up-field").hidden = !spec.up;
  $("param-down-field").hidden = !spec.down;
  $("param-none").hidden = Boolean(spec.up);
  if (spec.up) {
    $("param-up-label").textContent = spec.up;
    $("param-down-label").textContent = spec.down;
  }
}

function readForm() {
  const name = $("objective").value;
  const spec = OBJECTIVES[name];
  const all = $("cand-all").checked;
  const genes = parseGenes($("screen-genes").value);
  if (!all && !genes.length) throw new Error("list at least one candidate gene, or choose every perturbation.");
  const up = parseGenes($("param-up").value);
  const down = parseGenes($("param-down").value);
  if (spec.up && !up.length && !down.length) throw new Error(`name at least one gene under "${spec.up}" or "${spec.down}".`);
  const candidates = all ? { all: true } : { genes };
  if (!all && $("cand-pairs").checked) candidates.pairs = genes; // every pair of these
  const top = Math.max(1, Math.round(Number($("screen-top").value) || 20));
  return { context: $("screen-context").value, candidates, objective: { name, params: spec.params(up, down) }, top };
}

function cell(row, text, className = "") {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function showHits(rows, context, explain) {
  const body = $("hits").tBodies[0];
  body.replaceChildren();
  for (const hit of rows) {
    const row = body.insertRow();
    cell(row, String(hit.rank), "num");
    const name = row.insertCell();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = hit.label;
    button.title = `Explain ${hit.label}`;
    button.setAttribute("aria-label", `Explain ${hit.label}`);
    const dose = hit.dose === "" || hit.dose === null || hit.dose === undefined ? null : Number(hit.dose);
    button.addEventListener("click", () => explain(context, hit.perturbation || hit.label, dose));
    name.append(button);
    cell(row, fmt(hit.score), "num");
    cell(row, Number.isFinite(hit.lower) ? `${fmt(hit.lower)} to ${fmt(hit.upper)}` : "–", "num");
    cell(row, fmt(hit.pvalue, 2), "num");
    cell(row, fmt(hit.fdr, 2), "num");
    cell(row, Number.isFinite(hit.in_domain) ? fmt(hit.in_domain, 2) : "–", "num");
    cell(row, hit.prediction_source || "–");
    const top = Array.isArray(hit.top_genes) ? hit.top_genes.join(", ") : String(hit.top_genes || "").split(";").join(", ");
    const names = top.split(", ").filter(Boolean);
    const shown = cell(row, names.length > 6 ? `${names.slice(0, 6).join(", ")}, …` : top, "genes-cell");
    shown.title = top;
  }
  // Columns the screen left empty (a model without intervals, an objective without p-values)
  // are not shown.
  const head = $("hits").tHead.rows[0];
  for (let c = 0; c < head.cells.length; c++) {
    const empty = rows.length > 0 && [...body.rows].every((r) => r.cells[c].textContent === "–");
    for (const r of [head, ...body.rows]) r.cells[c].hidden = empty;
  }
  $("screen-results").hidden = false;
}

export function setupScreen(model, { showPrediction }) {
  const select = $("objective");
  for (const name of objectiveNames(model)) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = OBJECTIVES[name].label;
    select.append(option);
  }
  select.addEventListener("change", showParams);
  showParams();
  const pairsAllowed = () => {
    // pairs of every representable perturbation would be far too many: pairs of listed genes only
    $("cand-pairs").disabled = $("cand-all").checked;
    if ($("cand-all").checked) $("cand-pairs").checked = false;
  };
  for (const id of ["cand-all", "cand-genes"]) $(id).addEventListener("change", pairsAllowed);
  $("screen-genes").addEventListener("input", () => {
    $("cand-genes").checked = true;
    pairsAllowed();
  });

  let job = null;
  let explained = null;

  async function explain(context, perturbation, dose = null) {
    explained = { context, perturbation, dose };
    const box = $("explain-error");
    clearError(box);
    $("explain").hidden = false;
    $("explain-title").textContent = `Why ${perturbation} scores in ${context}`;
    $("explain-bars").replaceChildren();
    $("explain-genes").replaceChildren();
    $("explain-sets").replaceChildren();
    $("explain-sets-box").hidden = true;
    $("explain-notes").textContent = "";
    $("explain-title").focus();
    try {
      const body = { context, perturbation, ...(Number.isFinite(dose) ? { dose } : {}) };
      const result = await api("/explain", { method: "POST", body });
      $("explain-bars").replaceChildren(activityBars(activitiesOf(result), `Activities of ${perturbation}`, widthOf($("explain-bars"))));
      $("explain-genes").replaceChildren(
        ...(result.top_genes || []).slice(0, 15).map((g) => {
          const li = document.createElement("li");
          const name = typeof g === "string" ? g : g.gene || g.name;
          li.textContent = Number.isFinite(g.effect) ? `${name} (${fmt(g.effect)})` : name;
          return li;
        }),
      );
      const sets = (result.gene_sets || []).slice(0, 8);
      $("explain-sets").replaceChildren(
        ...sets.map((g) => {
          const li = document.createElement("li");
          li.textContent = `${g.set} (${g.direction}, FDR ${fmt(g.fdr, 2)})`;
          return li;
        }),
      );
      $("explain-sets-box").hidden = !sets.length;
      $("explain-notes").textContent = (result.notes || []).join(" ");
      $("explain-body").hidden = false;
    } catch (error) {
      $("explain-body").hidden = true;
      showError(box, error);
    }
  }
  $("explain-predict").addEventListener("click", () => {
    if (explained) showPrediction(explained.context, explained.perturbation, explained.dose);
  });

  function running(on) {
    $("screen-button").disabled = on;
    $("screen-cancel").hidden = !on;
    $("screen-progress-box").hidden = false;
  }

  async function watch(id, context) {
    for (;;) {
      const state = await api(`/jobs/${encodeURIComponent(id)}`);
      if (job !== id) return;
      const progress = Math.min(1, Math.max(0, Number(state.progress) || 0));
      $("screen-progress").value = progress;
      const message = state.message ? `: ${state.message}` : "";
      $("screen-status").textContent = `Screen ${state.status} (${Math.round(progress * 100)} %)${message}`;
      if (state.status === "done") {
        showHits(state.rows || [], context, explain);
        $("screen-status").textContent = `Screen done: ${(state.rows || []).length} hits ranked.`;
        return;
      }
      if (state.status === "failed" || state.status === "cancelled") {
        if (state.status === "failed") showError($("screen-error"), new Error(`the screen failed${message}`));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  $("screen-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("screen-error");
    clearError(box);
    let body;
    try {
      body = readForm();
    } catch (error) {
      showError(box, error);
      return;
    }
    $("screen-results").hidden = true;
    $("screen-progress").value = 0;
    $("screen-status").textContent = "Screen queued…";
    running(true);
    try {
      const { job_id: id, n_candidates: n } = await api("/screen", { method: "POST", body });
      job = id;
      if (Number.isFinite(n)) $("screen-status").textContent = `Screen queued: ${n} candidates.`;
      await watch(id, body.context);
    } catch (error) {
      $("screen-status").textContent = "";
      // A suggestion replaces the name it was made for, in whichever box holds it.
      showError(box, error, (name) => {
        for (const id of ["screen-genes", "param-up", "param-down"]) {
          const genes = parseGenes($(id).value);
          const wrong = genes.find((g) => error.message.includes(`'${g}'`)) || genes.find((g) => error.message.includes(g));
          if (!wrong) continue;
          $(id).value = genes.map((g) => (g === wrong ? name : g)).join("\n");
          return;
        }
      });
    } finally {
      running(false);
    }
  });

  $("screen-cancel").addEventListener("click", async () => {
    const id = job;
    if (!id) return;
    job = null;
    $("screen-status").textContent = "Screen cancelled.";
    try {
      await api(`/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
    } catch (error) {
      showError($("screen-error"), error);
    }
  });

  $("screen-csv").addEventListener("click", async () => {
    if (!job) return;
    try {
      const resp = await api(`/jobs/${encodeURIComponent(job)}/csv`, { raw: true });
      const url = URL.createObjectURL(await resp.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = `celltwin-screen-${job}.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      showError($("screen-error"), error);
    }
  });
}
