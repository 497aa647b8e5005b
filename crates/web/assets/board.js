// tasklease board: the live parts. Listens to /events, fetches this page again when
// something changed and swaps its #live part (rendered and escaped by the server,
// parsed as a separate document so none of it runs), and counts lease ends down.
// Data is only ever written into the page with textContent.
"use strict";
(function () {
  // Server clock minus ours, from the data-now-ms of the latest #live.
  let offset = 0;
  function syncClock(live) {
    const now = Number(live && live.dataset.nowMs);
    if (now) offset = now - Date.now();
  }

  function human(ms) {
    const s = Math.floor(ms / 1000);
    if (s >= 86400) return Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
    if (s >= 3600) return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
    if (s >= 60) return Math.floor(s / 60) + "m" + (s % 60) + "s";
    if (s >= 1) return s + "s";
    return Math.max(0, Math.floor(ms)) + "ms";
  }

  function tick() {
    const now = Date.now() + offset;
    for (const el of document.querySelectorAll("[data-until-ms]")) {
      const left = Number(el.dataset.untilMs) - now;
      const near = Number(el.dataset.nearMs) || 60000;
      el.textContent = left > 0 ? human(left) + " left" : "expired " + human(-left) + " ago";
      el.classList.toggle("near", left > 0 && left < near);
      el.classList.toggle("expired", left <= 0);
    }
  }

  const feed = document.getElementById("feed");
  function say(text, cls) {
    if (!feed) return;
    feed.textContent = text;
    feed.className = "feed " + (cls || "");
  }

  // One fetch at a time; a change meanwhile asks for one more afterwards. Fetches
  // start at most every GAP_MS (a change shows within a second), and further apart
  // when the server took long to read the page (Server-Timing): the board then
  // spends at most a twentieth of the time reading, so a big store under full load
  // is not slowed by the people watching it.
  const GAP_MS = 500;
  const DUTY = 20;
  const MAX_GAP_MS = 15000;
  let gap = GAP_MS;
  let fetching = false;
  let again = false;
  let last = 0;
  function readMs(resp) {
    const m = /read;dur=([0-9.]+)/.exec(resp.headers.get("server-timing") || "");
    return m ? Number(m[1]) : 0;
  }
  async function refresh() {
    if (fetching) { again = true; return; }
    const wait = last + gap - Date.now();
    if (wait > 0) { fetching = true; setTimeout(() => { fetching = false; refresh(); }, wait); return; }
    fetching = true;
    last = Date.now();
    try {
      const resp = await fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" });
      gap = Math.min(MAX_GAP_MS, Math.max(GAP_MS, DUTY * readMs(resp)));
      if (resp.ok) {
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        const fresh = doc.getElementById("live");
        const old = document.getElementById("live");
        if (fresh && old) {
          const focused = document.activeElement;
          const focusKey = focused && focused.closest && focused.closest("[data-id]")
            ? focused.closest("[data-id]").dataset.id : null;
          const adopted = document.importNode(fresh, true);
          old.replaceWith(adopted);
          syncClock(adopted);
          if (focusKey) {
            const card = adopted.querySelector('[data-id="' + CSS.escape(focusKey) + '"] a');
            if (card) card.focus();
          }
          tick();
          document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
        }
      }
    } catch (e) {
      say("live: cannot reach the server", "lost");
    } finally {
      fetching = false;
      if (again) { again = false; setTimeout(refresh, 100); }
    }
  }

  function connect() {
    if (!window.EventSource || !document.getElementById("live")) return;
    const es = new EventSource("/events");
    es.addEventListener("hello", () => { say("live", "on"); refresh(); });
    es.addEventListener("change", () => { refresh(); });
    es.onerror = () => { say("reconnecting…", "lost"); };
  }

  syncClock(document.getElementById("live"));
  tick();
  setInterval(tick, 1000);
  connect();
})();
