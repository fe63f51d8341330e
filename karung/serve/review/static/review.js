// karung review queue: keyboard moderation. Plain JS, no build step, no inline script (CSP).
(() => {
  "use strict";

  const grid = document.getElementById("grid");
  if (!grid) return;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const emptyBox = document.getElementById("empty");
  const toastBox = document.getElementById("toast");
  const heldCount = document.getElementById("held-count");
  const waitingCount = document.getElementById("waiting-count");
  const reasons = Array.from(document.querySelectorAll(".reason"));
  const toolbar = document.getElementById("toolbar");
  const leaseMs = Number(toolbar.dataset.leaseSeconds || 300) * 1000;
  const LABEL_KEYS = { "1": "bale", "2": "sack", "3": "garment", "4": "other" };

  let reasonIndex = 0;
  let selected = null;
  let chain = Promise.resolve(); // actions reach the server in the order they were keyed
  let inFlight = 0;
  let lastActivity = Date.now();
  let toastTimer = 0;

  const liveCards = () => Array.from(grid.querySelectorAll(".card:not(.leaving)"));
  const itemId = (card) => Number(card.dataset.itemId);

  function select(card) {
    if (selected) selected.classList.remove("selected");
    selected = card || null;
    if (selected) {
      selected.classList.add("selected");
      selected.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  function columns() {
    const cards = liveCards();
    if (!cards.length) return 1;
    const top = cards[0].offsetTop;
    const n = cards.filter((c) => c.offsetTop === top).length;
    return Math.max(1, n);
  }

  function move(delta) {
    const cards = liveCards();
    if (!cards.length) return;
    const at = cards.indexOf(selected);
    const next = at < 0 ? 0 : Math.min(cards.length - 1, Math.max(0, at + delta));
    select(cards[next]);
  }

  function neighbour(card) {
    const cards = liveCards();
    const at = cards.indexOf(card);
    return cards[at + 1] || cards[at - 1] || null;
  }

  function toast(message, bad) {
    toastBox.textContent = message;
    toastBox.classList.toggle("bad", Boolean(bad));
    toastBox.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toastBox.classList.remove("show"), bad ? 5000 : 1800);
  }

  function setReason(index) {
    reasonIndex = (index + reasons.length) % reasons.length;
    reasons.forEach((btn, i) => {
      btn.classList.toggle("on", i === reasonIndex);
      btn.setAttribute("aria-checked", i === reasonIndex ? "true" : "false");
    });
  }

  function updateCounts(waiting) {
    const n = liveCards().length;
    heldCount.textContent = `${n} held`;
    if (typeof waiting === "number") waitingCount.textContent = `${waiting} waiting`;
    emptyBox.classList.toggle("hidden", n > 0);
  }

  async function api(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) {
      window.location.href = "/review/login?next=/review";
      throw new Error("session expired");
    }
    if (!response.ok) {
      const info = (data && data.error) || {};
      const err = new Error(info.message || `HTTP ${response.status}`);
      err.code = info.code || "http_error";
      throw err;
    }
    return data;
  }

  function enqueue(task) {
    inFlight += 1;
    chain = chain
      .then(task)
      .catch((err) => toast(err.message, true))
      .finally(() => {
        inFlight -= 1;
        updateCounts();
        if (inFlight === 0 && liveCards().length === 0) refill();
      });
  }

  // The card leaves at once (moderators key fast); it comes back if the server says no.
  function act(card, path, body, describe) {
    if (!card) return;
    const next = neighbour(card);
    card.classList.add("leaving");
    select(next);
    enqueue(async () => {
      try {
        const data = await api(path, body);
        card.remove();
        toast(describe(data));
      } catch (err) {
        if (err.code === "not_claimed") {
          // The lease ran out and someone else has the item now: it is theirs to decide.
          card.remove();
          throw new Error(`#${itemId(card)} is no longer yours (lease expired)`);
        }
        card.classList.remove("leaving");
        card.classList.add("error");
        select(card);
        throw err;
      }
    });
  }

  function decide(label, card) {
    card = card || selected;
    if (!card) return;
    const reason = reasons[reasonIndex].dataset.reason;
    const id = itemId(card);
    act(card, "/review/api/decide", { item_id: id, label, reason_code: reason }, () =>
      `#${id} → ${label} (${reason.replace(/_/g, " ")})`);
  }

  function skip(card) {
    card = card || selected;
    if (!card) return;
    const id = itemId(card);
    act(card, "/review/api/skip", { item_id: id }, () => `#${id} skipped`);
  }

  function cardFromHtml(html) {
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  function undo() {
    enqueue(async () => {
      const data = await api("/review/api/undo");
      const old = grid.querySelector(`.card[data-item-id="${data.item_id}"]`);
      if (old) old.remove();
      const card = cardFromHtml(data.card_html);
      grid.prepend(card);
      select(card);
      toast(`Undid #${data.item_id}: decide it again`);
    });
  }

  async function refill() {
    if (inFlight > 0) return;
    try {
      const data = await api("/review/api/claim");
      const held = new Set(data.items);
      // Cards whose lease was lost (e.g. after a long pause) leave; new items join at the end.
      liveCards().forEach((card) => { if (!held.has(itemId(card))) card.remove(); });
      const have = new Set(Array.from(grid.querySelectorAll(".card")).map(itemId));
      data.cards_html.forEach((html, i) => {
        if (!have.has(data.items[i])) grid.append(cardFromHtml(html));
      });
      updateCounts(data.waiting);
      if (!selected || !selected.isConnected) select(liveCards()[0]);
    } catch (err) {
      toast(err.message, true);
    }
  }

  // Keep leases alive while the moderator is at the desk; let them lapse when they are not.
  setInterval(() => {
    if (Date.now() - lastActivity < leaseMs && inFlight === 0) refill();
  }, Math.max(5000, Math.min(60000, leaseMs / 3)));
  setInterval(() => {
    if (liveCards().length === 0 && inFlight === 0) refill();
  }, 30000);

  document.addEventListener("keydown", (event) => {
    lastActivity = Date.now();
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    const key = event.key;
    // A held-down key must not decide a whole row of items.
    if (event.repeat && !key.startsWith("Arrow") && !"hjkl".includes(key)) return;
    if (LABEL_KEYS[key]) decide(LABEL_KEYS[key]);
    else if (key === "s" || key === "S") skip();
    else if (key === "u" || key === "U") undo();
    else if (key === "r") setReason(reasonIndex + 1);
    else if (key === "R") setReason(reasonIndex - 1);
    else if (key === "ArrowRight" || key === "l") move(1);
    else if (key === "ArrowLeft" || key === "h") move(-1);
    else if (key === "ArrowDown" || key === "j") move(columns());
    else if (key === "ArrowUp" || key === "k") move(-columns());
    else return;
    event.preventDefault();
  });

  document.addEventListener("mousemove", () => { lastActivity = Date.now(); }, { passive: true });

  grid.addEventListener("click", (event) => {
    const card = event.target.closest(".card");
    if (!card || card.classList.contains("leaving")) return;
    const button = event.target.closest("button.act");
    if (button && button.dataset.label) decide(button.dataset.label, card);
    else if (button && button.dataset.skip) skip(card);
    else if (!event.target.closest("a")) select(card);
  });

  reasons.forEach((btn, i) => btn.addEventListener("click", () => setReason(i)));
  document.getElementById("refill").addEventListener("click", refill);

  // A bank entry without a stored image shows its id instead of a broken picture.
  document.addEventListener("error", (event) => {
    const img = event.target;
    if (img && img.tagName === "IMG" && img.dataset.fallback) {
      img.closest(".shot").classList.add("missing");
    }
  }, true);

  select(liveCards()[0]);
  updateCounts();
})();
