'use strict';

// The usage page (docs/usage.md): one key's calls, or the tenant's, per hour
// or day, stacked by outcome in an SVG chart drawn here (no charting
// library: docs/usage.md "Portal"), with the same numbers in a table for
// keyboard and screen-reader users, and for the tenant the busiest and most
// failing keys.
(() => {
  const {api, el, show, base} = Portal;
  const adminPath = base + '/api/v1/admin';
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const PERIODS = {
    '24h': {granularity: 'hour', buckets: 24},
    '7d': {granularity: 'day', buckets: 7},
    '30d': {granularity: 'day', buckets: 30},
  };
  const HOUR = 3600 * 1000;
  const DAY = 24 * HOUR;
  let keyNames = new Map();

  // [from, to) of the last `buckets` whole buckets, the current one included.
  function range(period) {
    const p = PERIODS[period];
    const len = p.granularity === 'day' ? DAY : HOUR;
    const to = Math.floor(Date.now() / len) * len + len;
    return {granularity: p.granularity, from: new Date(to - p.buckets * len).toISOString(),
            to: new Date(to).toISOString()};
  }

  // Outcomes in a stable order: valid first, then by total, descending.
  function outcomesOf(totals) {
    const entries = Object.entries(totals.outcomes || {});
    entries.sort((a, b) => (a[0] === 'valid' ? -1 : b[0] === 'valid' ? 1 : b[1] - a[1] ||
                                                  a[0].localeCompare(b[0])));
    return entries.map(([name]) => name);
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function bucketLabel(start, granularity) {
    const iso = new Date(start).toISOString();
    return granularity === 'hour' ? iso.slice(11, 16) : iso.slice(5, 10);
  }

  // A stacked bar per bucket; the figure's text alternative is the table.
  function drawChart(data, outcomes) {
    const chart = $('usage-chart');
    chart.replaceChildren();
    const width = 800, height = 260, left = 48, bottom = 28, top = 10;
    const buckets = data.buckets || [];
    const max = Math.max(1, ...buckets.map((b) => b.counts.calls || 0));
    const root = svg('svg', {viewBox: `0 0 ${width} ${height}`, role: 'img',
                             'aria-labelledby': 'usage-title'});
    const plotH = height - bottom - top;
    const slot = (width - left) / Math.max(1, buckets.length);
    root.appendChild(svg('line', {x1: left, y1: top + plotH, x2: width, y2: top + plotH,
                                  class: 'axis'}));
    root.appendChild(svg('line', {x1: left, y1: top, x2: left, y2: top + plotH, class: 'axis'}));
    const maxLabel = svg('text', {x: left - 6, y: top + 10, 'text-anchor': 'end'});
    maxLabel.textContent = String(max);
    root.appendChild(maxLabel);
    const zero = svg('text', {x: left - 6, y: top + plotH, 'text-anchor': 'end'});
    zero.textContent = '0';
    root.appendChild(zero);
    const every = Math.max(1, Math.ceil(buckets.length / 12));
    buckets.forEach((b, i) => {
      let y = top + plotH;
      const x = left + i * slot + slot * 0.15;
      outcomes.forEach((outcome, k) => {
        const n = (b.counts.outcomes || {})[outcome] || 0;
        if (!n) return;
        const h = (n / max) * plotH;
        y -= h;
        const rect = svg('rect', {x: x.toFixed(1), y: y.toFixed(1), width: (slot * 0.7).toFixed(1),
                                  height: Math.max(h, 0.5).toFixed(1), class: 'c' + Math.min(k, 7)});
        const tip = svg('title');
        tip.textContent = `${bucketLabel(b.start, data.granularity)} ${outcome}: ${n}`;
        rect.appendChild(tip);
        root.appendChild(rect);
      });
      if (i % every === 0) {
        const label = svg('text', {x: (left + i * slot + slot / 2).toFixed(1), y: height - 8,
                                   'text-anchor': 'middle'});
        label.textContent = bucketLabel(b.start, data.granularity);
        root.appendChild(label);
      }
    });
    chart.appendChild(root);
    const legend = $('usage-legend');
    legend.replaceChildren();
    if (!outcomes.length) legend.appendChild(el('span', 'No calls in this period.'));
    outcomes.forEach((outcome, k) => {
      const item = el('span');
      item.appendChild(el('span', '', 'legend-swatch c' + Math.min(k, 7)));
      item.appendChild(document.createTextNode(outcome));
      legend.appendChild(item);
    });
  }

  function drawTable(data, outcomes) {
    const head = $('usage-head');
    head.replaceChildren();
    for (const title of ['Start (UTC)', 'Calls', 'Failures', ...outcomes]) {
      const th = el('th', title);
      th.scope = 'col';
      head.appendChild(th);
    }
    const body = $('usage-body');
    body.replaceChildren();
    for (const b of data.buckets || []) {
      const tr = el('tr');
      tr.dataset.start = b.start;
      const th = el('th', new Date(b.start).toISOString().slice(0, 16).replace('T', ' '));
      th.scope = 'row';
      tr.appendChild(th);
      tr.appendChild(el('td', b.counts.calls || 0));
      tr.appendChild(el('td', b.counts.failures || 0));
      for (const outcome of outcomes) {
        tr.appendChild(el('td', (b.counts.outcomes || {})[outcome] || 0));
      }
      body.appendChild(tr);
    }
  }

  function keyLabel(k) {
    if (!k.keyId) return '(unattributed failures)';
    if (k.deleted) return `${k.keyId} (deleted)`;
    return `${k.name} (${k.keyId})`;
  }

  function drawTops(tbody, keys) {
    tbody.replaceChildren();
    if (!keys.length) {
      const tr = el('tr');
      const td = el('td', 'None in this period.');
      td.colSpan = 3;
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    for (const k of keys) {
      const tr = el('tr');
      tr.appendChild(el('td', keyLabel(k)));
      tr.appendChild(el('td', k.calls || 0));
      tr.appendChild(el('td', k.failures || 0));
      tbody.appendChild(tr);
    }
  }

  // Suspicious events per UTC day: one bar per day (the table under it
  // holds the same numbers).
  function drawSuspicious(days) {
    const chart = $('suspicious-chart');
    chart.replaceChildren();
    const width = 800, height = 140, left = 48, bottom = 24, top = 10;
    const max = Math.max(1, ...days.map((d) => d.count || 0));
    const root = svg('svg', {viewBox: `0 0 ${width} ${height}`, role: 'img',
                             'aria-labelledby': 'suspicious-title'});
    const plotH = height - bottom - top;
    const slot = (width - left) / Math.max(1, days.length);
    root.appendChild(svg('line', {x1: left, y1: top + plotH, x2: width, y2: top + plotH,
                                  class: 'axis'}));
    const maxLabel = svg('text', {x: left - 6, y: top + 10, 'text-anchor': 'end'});
    maxLabel.textContent = String(max);
    root.appendChild(maxLabel);
    const every = Math.max(1, Math.ceil(days.length / 12));
    days.forEach((d, i) => {
      const n = d.count || 0;
      if (n) {
        const h = (n / max) * plotH;
        const rect = svg('rect', {x: (left + i * slot + slot * 0.15).toFixed(1),
                                  y: (top + plotH - h).toFixed(1),
                                  width: (slot * 0.7).toFixed(1),
                                  height: Math.max(h, 0.5).toFixed(1), class: 'c1'});
        const tip = svg('title');
        tip.textContent = `${bucketLabel(d.day, 'day')}: ${n} suspicious`;
        rect.appendChild(tip);
        root.appendChild(rect);
      }
      if (i % every === 0) {
        const label = svg('text', {x: (left + i * slot + slot / 2).toFixed(1), y: height - 6,
                                   'text-anchor': 'middle'});
        label.textContent = bucketLabel(d.day, 'day');
        root.appendChild(label);
      }
    });
    chart.appendChild(root);
    const body = $('suspicious-body');
    body.replaceChildren();
    for (const d of days) {
      const tr = el('tr');
      tr.dataset.day = d.day;
      const th = el('th', new Date(d.day).toISOString().slice(0, 10));
      th.scope = 'row';
      tr.appendChild(th);
      tr.appendChild(el('td', d.count || 0));
      body.appendChild(tr);
    }
  }

  async function load() {
    show($('usage-error'), false);
    show($('usage-loading'), true);
    const key = $('u-key').value;
    const period = $('u-period').value;
    const r = range(period);
    const query = new URLSearchParams(r).toString();
    const path = key ? `${adminPath}/api-keys/${encodeURIComponent(key)}/usage?${query}`
                     : `${adminPath}/usage?${query}`;
    try {
      const reply = await api('GET', path);
      const data = reply.data;
      const outcomes = outcomesOf(data.totals || {});
      const t = data.totals || {};
      $('usage-title').textContent = (key ? `Key ${keyNames.get(key) || key}` : 'All keys') +
          ` · ${$('u-period').selectedOptions[0].textContent}`;
      $('usage-caption').textContent = $('usage-title').textContent;
      $('usage-totals').textContent = `${t.calls || 0} calls (${t.verifications || 0} ` +
          `verifications, ${t.apiCalls || 0} admin API calls), ${t.failures || 0} failed.`;
      const table = $('usage-table');
      table.dataset.path = path;
      drawChart(data, outcomes);
      drawTable(data, outcomes);
      show($('tenant-tops'), !key);
      if (!key) {
        drawTops($('top-calls-body'), data.topKeysByCalls || []);
        drawTops($('top-failures-body'), data.topKeysByFailures || []);
        drawSuspicious(data.suspiciousPerDay || []);
      }
      show($('usage-view'), true);
    } catch (e) {
      if (e.status === 401) return;
      $('usage-error').textContent = 'Could not load usage: ' + e.message;
      show($('usage-error'), true);
    } finally {
      show($('usage-loading'), false);
    }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    try {
      await Portal.initSignedIn();
      const keys = await api('GET', `${adminPath}/api-keys?limit=100`);
      const select = $('u-key');
      for (const k of keys.data || []) {
        keyNames.set(k.id, k.name);
        const option = el('option', `${k.name} (${k.id})`);
        option.value = k.id;
        select.appendChild(option);
      }
      const wanted = new URLSearchParams(location.search).get('key');
      if (wanted && keyNames.has(wanted)) select.value = wanted;
      select.addEventListener('change', load);
      $('u-period').addEventListener('change', load);
      await load();
    } catch (e) {
      if (e.status !== 401) {
        $('usage-error').textContent = 'Could not load usage: ' + e.message;
        show($('usage-error'), true);
      }
      show($('usage-loading'), false);
    }
  });
})();
