// hookline inspector: the few things pages do with JavaScript. Every page works without it.
'use strict';

// The first page of the event list asks every few seconds for events newer than the newest
// it shows, and adds their rows (rendered and escaped by the server) on top.
function followNewEvents() {
  const table = document.querySelector('table[data-poll]');
  if (!table) return;
  const body = table.tBodies[0];
  const live = document.getElementById('live');
  let cursor = table.dataset.cursor || '0';
  let added = 0;
  async function poll() {
    const url = table.dataset.poll + (table.dataset.poll.includes('?') ? '&' : '?') + 'after=' + cursor;
    let response;
    try {
      response = await fetch(url, { credentials: 'same-origin', redirect: 'manual' });
    } catch (e) {
      return; // offline for a moment: try again later
    }
    const next = response.ok && response.headers.get('x-hookline-cursor');
    if (!next) {
      window.location.reload(); // session over, or the page is stale: let the server decide
      return;
    }
    const html = await response.text();
    if (next !== cursor && html.trim() !== '') {
      body.insertAdjacentHTML('afterbegin', html);
      const rows = body.querySelectorAll('tr');
      const fresh = Array.from(rows).filter((row) => Number(row.dataset.seq) > Number(cursor));
      fresh.forEach((row) => row.classList.add('new'));
      added += fresh.length;
      while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
      if (live) live.textContent = added + ' new event' + (added === 1 ? '' : 's') + ' since the page loaded.';
      const empty = document.querySelector('.empty');
      if (empty) empty.remove();
    }
    cursor = next;
  }
  window.setInterval(poll, 2000);
}

// Copy buttons copy the text of the element they name.
function enableCopy() {
  document.querySelectorAll('button[data-copy]').forEach((button) => {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', async () => {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = 'Copied';
      window.setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
  });
}

document.addEventListener('DOMContentLoaded', () => {
  followNewEvents();
  enableCopy();
});
