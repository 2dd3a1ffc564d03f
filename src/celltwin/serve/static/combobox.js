// Search as you type: an input with role="combobox" and its listbox (WAI-ARIA combobox pattern
// with aria-activedescendant). Up/Down move, Enter picks, Escape closes, Tab leaves.

const KIND_LABELS = { measured: "measured", trained: "trained", prior: "from priors" };

export function combobox(input, list, { search, onPick = () => {}, delay = 120 }) {
  let items = [];
  let active = -1;
  let timer = 0;
  let asked = 0; // answers to older searches are dropped

  function setOpen(open) {
    list.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    if (!open) {
      active = -1;
      input.removeAttribute("aria-activedescendant");
    }
  }

  function render() {
    list.replaceChildren();
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.setAttribute("role", "option");
      li.setAttribute("aria-disabled", "true");
      li.textContent = "Nothing matches";
      list.append(li);
    }
    items.forEach((item, i) => {
      const li = document.createElement("li");
      li.id = `${list.id}-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === active));
      li.dataset.name = item.name;
      const name = document.createElement("span");
      name.textContent = item.name;
      li.append(name);
      if (item.kind) {
        const kind = document.createElement("span");
        kind.className = `kind kind-${item.kind}`;
        kind.textContent = KIND_LABELS[item.kind] || item.kind;
        li.append(kind);
      }
      // mousedown, not click: picking must happen before the input's blur closes the list
      li.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pick(i);
      });
      list.append(li);
    });
    setOpen(true);
  }

  function move(step) {
    if (!items.length) return;
    active = (active + step + items.length) % items.length;
    for (const li of list.children) li.setAttribute("aria-selected", "false");
    const li = list.children[active];
    li.setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
  }

  function pick(i) {
    input.value = items[i].name;
    setOpen(false);
    onPick(items[i]);
  }

  async function run() {
    const query = input.value.trim();
    const ticket = ++asked;
    if (!query) {
      items = [];
      setOpen(false);
      return;
    }
    let found;
    try {
      found = await search(query);
    } catch {
      found = [];
    }
    if (ticket !== asked || document.activeElement !== input) return;
    items = found;
    active = -1;
    render();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, delay);
  });
  input.addEventListener("keydown", (event) => {
    const open = !list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) {
        run();
        return;
      }
      move(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter" && open && active >= 0) {
      event.preventDefault(); // pick, do not submit the form
      pick(active);
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      setOpen(false);
    } else if (event.key === "Tab") {
      setOpen(false);
    }
  });
  input.addEventListener("blur", () => setOpen(false));
  return { close: () => setOpen(false) };
}
