// The pipeline board: drag a card to another column; the server decides.
// A refused move (checklist, conflict) puts the card back and says why.
(function () {
  "use strict";
  const board = document.getElementById("board");
  if (!board) return;
  const toasts = document.getElementById("toasts");
  const loseModalEl = document.getElementById("lose-modal");
  const loseModal = loseModalEl ? new bootstrap.Modal(loseModalEl) : null;
  let pendingLose = null;
  // ".../opportunities/0/move/" → the URL of an action on one card (the card carries its id).
  const actionTemplate = board.dataset.actionUrl;
  function actionUrl(card, action) {
    return actionTemplate.replace("/0/move/", "/" + card.dataset.id + "/" + action + "/");
  }

  function toast(message, kind) {
    const el = document.createElement("div");
    el.className = "toast align-items-center border-0 text-bg-" + (kind || "danger");
    el.setAttribute("role", "alert");
    el.dataset.testid = "toast";
    const body = document.createElement("div");
    body.className = "d-flex";
    const text = document.createElement("div");
    text.className = "toast-body";
    text.textContent = message;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close btn-close-white me-2 m-auto";
    close.setAttribute("data-bs-dismiss", "toast");
    body.append(text, close);
    el.append(body);
    toasts.append(el);
    new bootstrap.Toast(el, { delay: 8000 }).show();
    el.addEventListener("hidden.bs.toast", () => el.remove());
  }

  function putBack(evt) {
    const ref = evt.from.children[evt.oldIndex] || null;
    evt.from.insertBefore(evt.item, ref);
  }

  function send(card, url, values, evt) {
    card.classList.add("opacity-50");
    htmx.ajax("POST", url, {
      source: card,
      swap: "none",
      values: Object.assign({ version: card.dataset.version, from: "board" }, values),
    }).then(() => card.classList.remove("opacity-50"));
    card._dragEvent = evt;
  }

  document.body.addEventListener("htmx:afterRequest", (e) => {
    const card = e.detail.elt;
    if (!card || !card.classList || !card.classList.contains("opp-card")) return;
    card.classList.remove("opacity-50");
    if (!e.detail.successful) {
      if (card._dragEvent) putBack(card._dragEvent);
      const xhr = e.detail.xhr;
      toast((xhr && xhr.responseText) || board.dataset.errorText);
    }
    card._dragEvent = null;
  });

  board.querySelectorAll(".board-cards").forEach((column) => {
    new Sortable(column, {
      group: "board",
      forceFallback: true, // mouse and touch events: the same on phones, desktops and tests
      draggable: ".opp-card",
      animation: 150,
      ghostClass: "opp-ghost",
      onEnd(evt) {
        if (evt.from === evt.to) return;
        const card = evt.item;
        const kind = evt.to.dataset.stageKind;
        if (kind === "open") {
          send(card, actionUrl(card, "move"), { stage: evt.to.dataset.stageId }, evt);
        } else if (kind === "won") {
          send(card, actionUrl(card, "won"), {}, evt);
        } else if (kind === "lost" && loseModal) {
          pendingLose = { card: card, evt: evt };
          loseModalEl.querySelector("form").reset();
          loseModal.show();
        } else {
          putBack(evt);
        }
      },
    });
  });

  if (loseModalEl) {
    loseModalEl.querySelector("form").addEventListener("submit", (e) => {
      e.preventDefault();
      if (!pendingLose) return;
      const form = e.target;
      const { card, evt } = pendingLose;
      pendingLose = null;
      loseModal.hide();
      send(card, actionUrl(card, "lost"), { reason: form.reason.value, note: form.note.value }, evt);
    });
    loseModalEl.addEventListener("hidden.bs.modal", () => {
      if (pendingLose) {
        putBack(pendingLose.evt);
        pendingLose = null;
      }
    });
  }
})();
