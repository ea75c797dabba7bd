// Gantry job page: follows a running job's log. Hand-written, no dependencies; embedded in the
// server binary (web/assets.rs).
//
// It subscribes to the job's live stream (web/live.rs: /jobs/{id}/live, server-sent events)
// from the byte offset the page was rendered up to, appends new text line by line (ANSI colours
// rendered by the rules of web/ansi.rs), places it in the section of its step (creating step
// sections as steps start), keeps the steps table and the job's status current, follows the end
// of the log unless the reader scrolled up, and resumes after a dropped connection from the last
// byte it got (the browser sends Last-Event-ID; after a hard failure it reconnects itself with
// ?offset=). When the job ends it shows the final status and swaps in the server's rendering of
// the log (groups, annotations), keeping open sections open.
//
// Log text only ever reaches the page through textContent and createTextNode, never as markup.
(function () {
  'use strict';

  var log = document.getElementById('log');
  if (!log || log.getAttribute('data-live') !== 'true' || !window.EventSource) {
    return;
  }

  var liveUrl = log.getAttribute('data-live-url');
  var sectionsUrl = log.getAttribute('data-sections-url');
  var statusLine = document.getElementById('live-status');
  var encoder = new TextEncoder();

  // Bytes of log received (including the unfinished last line).
  var offset = Number(log.getAttribute('data-offset')) || 0;
  var nextLine = Number(log.getAttribute('data-next-line')) || 1;
  // The unfinished last line: its text, where it starts, and its element.
  var pending = '';
  var pendingOffset = offset;
  var pendingElement = null;

  var source = null;
  var retryDelay = 1000;
  var finished = false;
  // Follow the end of the log until the reader scrolls away from it.
  var follow = true;

  function byteLength(text) {
    return encoder.encode(text).length;
  }

  function setStatus(text) {
    if (statusLine) {
      statusLine.textContent = text;
    }
  }

  // --- ANSI rendering (the rules of web/ansi.rs) ---

  function afterCarriageReturn(line) {
    var trimmed = line.replace(/\r+$/, '');
    var at = trimmed.lastIndexOf('\r');
    return at >= 0 ? trimmed.slice(at + 1) : trimmed;
  }

  function newStyle() {
    return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  }

  function styleClasses(style) {
    var classes = [];
    if (style.fg !== null) classes.push('ansi-fg-' + style.fg);
    if (style.bg !== null) classes.push('ansi-bg-' + style.bg);
    if (style.bold) classes.push('ansi-bold');
    if (style.dim) classes.push('ansi-dim');
    if (style.italic) classes.push('ansi-italic');
    if (style.underline) classes.push('ansi-underline');
    return classes.join(' ');
  }

  function applySgr(style, params) {
    var codes = params.split(/[;:]/).map(function (part) {
      if (part === '') return 0;
      return /^[0-9]+$/.test(part) ? Number(part) : null;
    });
    for (var i = 0; i < codes.length; i++) {
      var code = codes[i];
      if (code === null) continue;
      if (code === 0) {
        var reset = newStyle();
        Object.keys(reset).forEach(function (key) { style[key] = reset[key]; });
      } else if (code === 1) style.bold = true;
      else if (code === 2) style.dim = true;
      else if (code === 3) style.italic = true;
      else if (code === 4) style.underline = true;
      else if (code === 22) { style.bold = false; style.dim = false; }
      else if (code === 23) style.italic = false;
      else if (code === 24) style.underline = false;
      else if (code >= 30 && code <= 37) style.fg = code - 30;
      else if (code === 39) style.fg = null;
      else if (code >= 40 && code <= 47) style.bg = code - 40;
      else if (code === 49) style.bg = null;
      else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
      else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
      else if (code === 38 || code === 48) {
        var colour = null;
        var kind = codes[i + 1];
        if (kind === 5) {
          var n = codes[i + 2];
          i += 2;
          colour = (typeof n === 'number' && n < 16) ? n : null;
        } else if (kind === 2) {
          i += 4;
        }
        if (code === 38) style.fg = colour; else style.bg = colour;
      }
    }
  }

  function renderLine(element, raw) {
    var line = afterCarriageReturn(raw);
    var style = newStyle();
    var text = '';
    function flush() {
      if (!text) return;
      var classes = styleClasses(style);
      if (classes) {
        var span = document.createElement('span');
        span.className = classes;
        span.textContent = text;
        element.appendChild(span);
      } else {
        element.appendChild(document.createTextNode(text));
      }
      text = '';
    }
    for (var i = 0; i < line.length; i++) {
      var ch = line[i];
      if (ch === '\u001b') {
        var next = line[i + 1];
        if (next === '[') {
          var j = i + 2;
          var params = '';
          var final = null;
          while (j < line.length) {
            var c = line.charCodeAt(j);
            if (c >= 0x40 && c <= 0x7e) { final = line[j]; break; }
            params += line[j];
            j++;
          }
          i = j;
          if (final === 'm') { flush(); applySgr(style, params); }
        } else if (next === ']') {
          var k = i + 2;
          while (k < line.length) {
            if (line[k] === '\u0007') break;
            if (line[k] === '\u001b') { if (line[k + 1] === '\\') k++; break; }
            k++;
          }
          i = k;
        } else {
          i += 1;
        }
        continue;
      }
      var code = line.charCodeAt(i);
      if (ch !== '\t' && (code < 0x20 || (code >= 0x7f && code <= 0x9f))) continue;
      text += ch;
    }
    flush();
  }

  function lineClass(line) {
    var plain = line.replace(/^[\u001b\s]+/, '');
    if (plain.indexOf('##[error]') === 0) return 'line line-error';
    if (plain.indexOf('##[warning]') === 0) return 'line line-warning';
    if (plain.indexOf('##[notice]') === 0) return 'line line-notice';
    if (plain.indexOf('##[debug]') === 0) return 'line line-debug';
    return 'line';
  }

  function makeLine(text, at, number) {
    var element = document.createElement('div');
    element.className = lineClass(text);
    element.id = 'L' + number;
    element.setAttribute('data-o', String(at));
    element.setAttribute('data-n', String(number));
    renderLine(element, text);
    return element;
  }

  // --- sections ---

  function allSections() {
    return Array.prototype.slice.call(log.querySelectorAll('section.log-section'));
  }

  function startOf(section) {
    return Number(section.getAttribute('data-start')) || 0;
  }

  function setBadge(badgeElement, badge) {
    if (!badgeElement || !badge) return;
    badgeElement.className = 'badge ' + badge['class'];
    badgeElement.title = badge.label;
    var symbol = badgeElement.querySelector('.badge-symbol');
    var label = badgeElement.querySelector('.badge-label');
    if (symbol) symbol.textContent = badge.symbol;
    if (label) label.textContent = (label.classList.contains('visually-hidden') ? ' ' : '') + badge.label;
  }

  function makeBadge(badge, hiddenLabel) {
    var element = document.createElement('span');
    var symbol = document.createElement('span');
    symbol.className = 'badge-symbol';
    symbol.setAttribute('aria-hidden', 'true');
    var label = document.createElement('span');
    label.className = hiddenLabel ? 'badge-label visually-hidden' : 'badge-label';
    element.appendChild(symbol);
    if (!hiddenLabel) element.appendChild(document.createTextNode(' '));
    element.appendChild(label);
    setBadge(element, badge);
    return element;
  }

  function makeSection(id, start, step) {
    var section = document.createElement('section');
    section.className = 'log-section';
    section.id = id;
    section.setAttribute('data-start', String(start));
    var details = document.createElement('details');
    details.open = true;
    var summary = document.createElement('summary');
    if (step) {
      section.setAttribute('data-step', String(step.number));
      summary.appendChild(makeBadge(step.badge, true));
      summary.appendChild(document.createTextNode(' '));
    }
    var title = document.createElement('span');
    title.className = 'section-title';
    title.textContent = step ? step.name : 'Output';
    summary.appendChild(title);
    summary.appendChild(document.createTextNode(' '));
    var duration = document.createElement('span');
    duration.className = 'duration';
    duration.textContent = step ? step.duration : '';
    summary.appendChild(duration);
    var lines = document.createElement('div');
    lines.className = 'lines';
    details.appendChild(summary);
    details.appendChild(lines);
    section.appendChild(details);
    return section;
  }

  // The section the byte at `at` belongs to: the last one starting at or before it.
  function sectionFor(at) {
    var found = null;
    allSections().forEach(function (section) {
      if (startOf(section) <= at) found = section;
    });
    if (!found) {
      found = allSections()[0] || null;
    }
    if (!found) {
      found = makeSection('log-output', 0, null);
      log.appendChild(found);
    }
    return found;
  }

  function linesOf(section) {
    return section.querySelector('.lines');
  }

  function hasOutput(section) {
    return linesOf(section).children.length > 0;
  }

  function appendLine(element, at) {
    var section = sectionFor(at);
    var empty = section.querySelector('.no-output');
    if (empty) empty.remove();
    linesOf(section).appendChild(element);
  }

  // A step that started gets its section; lines already shown at or after its start move in.
  function placeStep(step) {
    if (step.log_start === null || step.log_start === undefined) return;
    var id = 'step-' + step.number;
    var existing = document.getElementById(id);
    if (existing) {
      setBadge(existing.querySelector('summary .badge'), step.badge);
      var duration = existing.querySelector('summary .duration');
      if (duration) duration.textContent = step.duration;
      return;
    }
    var section = makeSection(id, step.log_start, step);
    var before = null;
    var previous = null;
    allSections().forEach(function (other) {
      if (before) return;
      if (startOf(other) > step.log_start) before = other;
      else previous = other;
    });
    if (before) {
      log.insertBefore(section, before);
    } else {
      log.appendChild(section);
    }
    if (previous) {
      var moving = Array.prototype.slice.call(linesOf(previous).children).filter(function (line) {
        var at = line.getAttribute('data-o');
        return at !== null && Number(at) >= step.log_start;
      });
      moving.forEach(function (line) { linesOf(section).appendChild(line); });
      // An output section left empty by the move goes away.
      if (!previous.hasAttribute('data-step') && !hasOutput(previous) && moving.length > 0) {
        previous.remove();
      }
    }
  }

  // --- steps table and job status ---

  function updateStepRow(step) {
    var table = document.getElementById('steps');
    if (!table) return;
    var row = document.getElementById('step-row-' + step.number);
    if (!row) {
      row = document.createElement('tr');
      row.id = 'step-row-' + step.number;
      var badgeCell = document.createElement('td');
      badgeCell.appendChild(makeBadge(step.badge, false));
      var nameCell = document.createElement('td');
      var link = document.createElement('a');
      link.href = '#step-' + step.number;
      link.textContent = step.name;
      nameCell.appendChild(link);
      var durationCell = document.createElement('td');
      durationCell.className = 'duration';
      row.appendChild(badgeCell);
      row.appendChild(nameCell);
      row.appendChild(durationCell);
      var body = table.tBodies[0] || table.appendChild(document.createElement('tbody'));
      body.appendChild(row);
      var none = document.getElementById('no-steps');
      if (none) none.remove();
    }
    setBadge(row.querySelector('.badge'), step.badge);
    var cell = row.querySelector('.duration');
    if (cell) cell.textContent = step.duration;
  }

  function showState(state) {
    setBadge(document.getElementById('job-badge'), state.badge);
    var detail = document.getElementById('job-detail');
    if (detail) detail.textContent = state.detail;
    var duration = document.getElementById('job-duration');
    if (duration) duration.textContent = state.duration;
    (state.steps || []).forEach(function (step) {
      updateStepRow(step);
      placeStep(step);
    });
  }

  // --- following the end ---

  function nearBottom() {
    var root = document.documentElement;
    return window.innerHeight + window.scrollY >= root.scrollHeight - 80;
  }

  window.addEventListener('scroll', function () {
    follow = nearBottom();
  }, { passive: true });

  function scrollToEnd() {
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  // --- log text ---

  // Shows the log text that runs from byte `start` to byte `end` (the event's id: the server
  // counts stored bytes, which differ from the text's own length where it had invalid UTF-8).
  function showText(start, end, text) {
    if (end <= offset) return true;
    if (start < offset) {
      // Bytes already shown (a stream that restarted earlier): drop them.
      text = new TextDecoder().decode(encoder.encode(text).slice(offset - start));
      start = offset;
    } else if (start > offset) {
      // A gap: ask again from where the page is.
      return false;
    }
    offset = end;
    var combined = pending + text;
    var at = pendingOffset;
    if (pendingElement) {
      pendingElement.remove();
      pendingElement = null;
    }
    var parts = combined.split('\n');
    var rest = parts.pop();
    parts.forEach(function (line) {
      appendLine(makeLine(line, at, nextLine), at);
      nextLine += 1;
      at += byteLength(line) + 1;
    });
    pending = rest;
    pendingOffset = Math.max(at, end - byteLength(rest));
    if (rest !== '') {
      pendingElement = makeLine(rest, pendingOffset, nextLine);
      pendingElement.classList.add('partial');
      appendLine(pendingElement, pendingOffset);
    }
    if (follow) scrollToEnd();
    return true;
  }

  // --- the end of the job ---

  function swapInSections() {
    if (!sectionsUrl || !window.fetch) return;
    fetch(sectionsUrl, { credentials: 'same-origin' })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var open = {};
        allSections().forEach(function (section) {
          var details = section.querySelector('details');
          if (details && details.open) open[section.id] = true;
        });
        // The server's rendering, escaped there; parsed inert, without scripts.
        var parsed = new DOMParser().parseFromString('<body>' + html + '</body>', 'text/html');
        var nodes = Array.prototype.slice.call(parsed.body.childNodes);
        while (log.firstChild) log.removeChild(log.firstChild);
        nodes.forEach(function (node) { log.appendChild(document.adoptNode(node)); });
        allSections().forEach(function (section) {
          var details = section.querySelector('details');
          if (details && open[section.id]) details.open = true;
        });
        if (follow) scrollToEnd();
      })
      .catch(function () { /* the live rendering stays */ });
  }

  function finish(state) {
    finished = true;
    if (source) source.close();
    if (pendingElement) pendingElement.classList.remove('partial');
    showState(state);
    log.setAttribute('data-live', 'false');
    setStatus('The job finished: ' + state.badge.label + '.');
    swapInSections();
  }

  // --- the stream ---

  function parse(event) {
    try {
      return JSON.parse(event.data);
    } catch (error) {
      return null;
    }
  }

  function reconnect() {
    if (source) source.close();
    if (finished) return;
    var delay = retryDelay;
    retryDelay = Math.min(retryDelay * 2, 30000);
    setStatus('Connection lost; trying again…');
    window.setTimeout(connect, delay);
  }

  function connect() {
    if (finished) return;
    source = new EventSource(liveUrl + '?offset=' + offset);
    source.onopen = function () {
      retryDelay = 1000;
      setStatus('Following the log live.');
    };
    source.addEventListener('log', function (event) {
      var data = parse(event);
      if (!data || typeof data.offset !== 'number' || typeof data.text !== 'string') return;
      var end = Number(event.lastEventId);
      if (!isFinite(end) || end < data.offset) end = data.offset + byteLength(data.text);
      if (!showText(data.offset, end, data.text)) reconnect();
    });
    source.addEventListener('state', function (event) {
      var state = parse(event);
      if (state) showState(state);
    });
    source.addEventListener('end', function (event) {
      var state = parse(event);
      if (state) finish(state);
    });
    source.onerror = function () {
      if (finished) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused (or is gone): reconnect ourselves, from the last byte shown.
        reconnect();
      } else {
        // The browser reconnects by itself and sends the last event id (a byte offset).
        setStatus('Connection lost; reconnecting…');
      }
    };
  }

  connect();
})();
