// vodprobe's web page: a single-page app over the JSON API (src/api/openapi.json), with hash
// routes #/ (latest captures), #/channel/<streamer_id>, #/vod/<stream_id>/<start_unix>,
// #/domains, #/events (lifecycle events) and #/status (charts of the last day). Every string from Twitch reaches the page through textContent or a text node,
// never as markup; the page has no inline code (its Content-Security-Policy forbids it).
'use strict';

(() => {
  const main = document.getElementById('main');
  const searchBox = document.getElementById('search');
  const suggestions = document.getElementById('suggestions');

  // ---- DOM and formatting helpers -------------------------------------------------------

  // el('tag.class', {attribute: value, onclick: fn}, child, ...): strings become text nodes.
  function el(spec, attributes, ...children) {
    const [tag, ...classes] = spec.split('.');
    const node = document.createElement(tag || 'div');
    if (classes.length) node.className = classes.join(' ');
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  const show = (...nodes) => main.replaceChildren(...nodes.filter((node) => node !== null));
  const pad = (n) => String(n).padStart(2, '0');
  const enc = encodeURIComponent;

  function clock(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }

  function when(iso) {
    if (!iso) return '–';
    const date = new Date(iso);
    const text = Number.isNaN(date.getTime())
      ? iso
      : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    return el('time', { datetime: iso, title: iso }, text);
  }

  let languageNames = null;
  try {
    languageNames = new Intl.DisplayNames([navigator.language || 'en'], { type: 'language' });
  } catch (_) {
    languageNames = null;
  }
  function languageName(code) {
    if (!code) return '–';
    try {
      const name = languageNames && languageNames.of(code);
      return name && name !== code ? `${name} (${code})` : code;
    } catch (_) {
      return code;
    }
  }

  const STATUS = { found: 'captured', not_found: 'not found', pending: 'pending', live: 'live' };
  const statusBadge = (status) => el(`span.badge.status-${status}`, null, STATUS[status] || status);
  // What the segment check found; a capture with no check yet (or never captured) gets none.
  const SEGMENTS = { ok: 'segments ok', partial: 'segments partial', gone: 'segments gone' };
  const segmentsBadge = (vod) => (vod.segments_state && vod.status === 'found'
    ? el(`span.badge.segments-${vod.segments_state}`, null, SEGMENTS[vod.segments_state] || vod.segments_state)
    : null);
  // A muted capture's original audio, while its -unmuted originals still answer.
  const audioBadge = (vod) => (vod.original_audio === 'available' && vod.playlist_url
    ? el('span.badge.audio-original', { title: 'the original audio of muted parts still answers' },
      'original audio until ', when(vod.original_audio_until))
    : null);
  // A playlist rebuilt from its segments (the CDN's own answered 403).
  const rebuiltBadge = (vod) => (vod.rebuilt
    ? el('span.badge.rebuilt', { title: 'the playlist was deleted; rebuilt from the segments that still answer' }, 'rebuilt')
    : null);
  // Still alive but near a retention edge (within the API's 24 hours, or past it unchecked).
  const AT_RISK_MS = 24 * 3600 * 1000;
  const atRisk = (vod) => Boolean(vod.at_risk_until && vod.segments_state !== 'gone'
    && Date.now() >= Date.parse(vod.at_risk_until) - AT_RISK_MS);
  const atRiskBadge = (vod) => (atRisk(vod)
    ? el('span.badge.at-risk', { title: `Twitch may delete it at ${when(vod.at_risk_until)}` }, 'at risk')
    : null);
  const visibility = (pub) => (pub === true ? 'public' : pub === false ? 'private' : 'visibility unknown');

  function mutedShare(vod) {
    if (!vod.segments || !vod.muted_segments) return null;
    const share = (100 * vod.muted_segments) / vod.segments;
    return `${share < 10 && share > 0 ? share.toFixed(1) : Math.round(share)} % muted`;
  }

  function errorBox(error) {
    return el('div.error', { role: 'alert' }, String(error && error.message ? error.message : error));
  }

  async function api(path) {
    const response = await fetch(path, { headers: { accept: 'application/json' } });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && body.error ? `${body.error.code}: ${body.error.message}` : '';
      throw new Error(`${path} answered ${response.status} ${detail}`);
    }
    return body;
  }

  // ---- routing --------------------------------------------------------------------------

  // Bumped on every navigation, so an answer that arrives after the user moved on is dropped.
  let generation = 0;

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const at = raw.indexOf('?');
    const path = at < 0 ? raw : raw.slice(0, at);
    const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
    const parts = path.split('/').filter(Boolean).map((part) => {
      try {
        return decodeURIComponent(part);
      } catch (_) {
        return part;
      }
    });
    return { parts, params };
  }

  async function route() {
    const current = ++generation;
    stopPlayer();
    hideSuggestions();
    const { parts, params } = parseHash();
    try {
      if (parts.length === 0) await listPage(current, params, null);
      else if (parts[0] === 'channel' && parts.length === 2) await listPage(current, params, parts[1]);
      else if (parts[0] === 'vod' && parts.length === 3) await vodPage(current, parts[1], parts[2]);
      else if (parts[0] === 'domains' && parts.length === 1) await domainsPage(current);
      else if (parts[0] === 'events' && parts.length === 1) await eventsPage(current, params);
      else if (parts[0] === 'status' && parts.length === 1) await statusPage(current);
      else show(el('p.note', null, 'No such page. ', el('a', { href: '#/' }, 'See the latest captures')));
    } catch (error) {
      if (current === generation) show(errorBox(error));
    }
  }

  // ---- lists: latest captures and a channel's broadcasts --------------------------------

  // The last day's counts (refreshed by the appliance on a schedule), fetched once.
  let countsPromise = null;
  function counts() {
    if (!countsPromise) {
      countsPromise = Promise.all([
        api('/api/v1/categories').catch(() => ({ items: [] })),
        api('/api/v1/languages').catch(() => ({ items: [] })),
      ]);
    }
    return countsPromise;
  }

  function select(name, label, options, value, onchange) {
    const control = el(`select`, { name, onchange }, options.map(([optionValue, text]) =>
      el('option', { value: optionValue, selected: optionValue === value }, text)));
    return el('div', null, el('label', null, label, control));
  }

  async function listPage(current, params, streamerId) {
    const defaultStatus = streamerId ? 'any' : 'found';
    const status = params.get('status') || defaultStatus;
    const query = new URLSearchParams();
    if (streamerId) query.set('streamer_id', streamerId);
    for (const name of ['game_id', 'language', 'public', 'followed', 'sort', 'cursor']) {
      if (params.get(name)) query.set(name, params.get(name));
    }
    if (status !== 'any') query.set('status', status);
    query.set('limit', '25');
    const [page, [categories, languages]] = await Promise.all([
      api(`/api/v1/vods?${query}`),
      counts(),
    ]);
    if (current !== generation) return;

    // Filter choices: the last day's counts, plus whatever the page shows, plus the one chosen.
    // Broadcasts without a category or language cannot be chosen: "" means no filter.
    const games = new Map(categories.items.filter((c) => c.game_id)
      .map((c) => [c.game_id, `${c.game_name || c.game_id} (${c.broadcasts})`]));
    const langs = new Map(languages.items.filter((l) => l.language)
      .map((l) => [l.language, `${languageName(l.language)} (${l.broadcasts})`]));
    for (const vod of page.items) {
      if (vod.game_id && !games.has(vod.game_id)) games.set(vod.game_id, vod.game_name || vod.game_id);
      if (vod.language && !langs.has(vod.language)) langs.set(vod.language, languageName(vod.language));
    }
    for (const [map, name] of [[games, 'game_id'], [langs, 'language']]) {
      const chosen = params.get(name);
      if (chosen && !map.has(chosen)) map.set(chosen, chosen);
    }
    const byLabel = (a, b) => a[1].localeCompare(b[1]);

    const base = streamerId ? `#/channel/${enc(streamerId)}` : '#/';
    function navigate() {
      const next = new URLSearchParams();
      for (const control of filters.querySelectorAll('select')) {
        const isDefault = control.name === 'status' ? control.value === defaultStatus : !control.value;
        if (!isDefault) next.set(control.name, control.value);
      }
      if (params.get('login')) next.set('login', params.get('login'));
      const text = next.toString();
      location.hash = text ? `${base}?${text}` : base;
    }
    const filters = el('div.filters', null,
      select('game_id', 'Category', [['', 'All categories'], ...[...games].sort(byLabel)], params.get('game_id') || '', navigate),
      select('language', 'Language', [['', 'All languages'], ...[...langs].sort(byLabel)], params.get('language') || '', navigate),
      select('status', 'Status', [['found', 'Captured'], ['not_found', 'Not found'], ['pending', 'Pending'],
        ['live', 'Live'], ['any', 'Any status']], status, navigate),
      select('public', 'Visibility', [['', 'Public or private'], ['true', 'Public'], ['false', 'Private (sub-only, unlisted, deleted)']],
        params.get('public') || '', navigate),
      select('followed', 'Follows', [['', 'Followed or not'], ['true', 'Followed channels'], ['false', 'Not followed']],
        params.get('followed') || '', navigate),
      select('sort', 'Order', [['', 'Newest first'], ['views', 'Most viewed']], params.get('sort') || '', navigate));

    let heading;
    // Feeds for readers and IPTV players; a channel's are named by a login it used.
    let feeds = null;
    if (streamerId) {
      const known = (page.items[0] && page.items[0].login) || params.get('login');
      const login = known || `streamer ${streamerId}`;
      heading = el('h1', null, 'Channel ', el('span.login', null, login));
      document.title = `${login} – vodprobe`;
      const events = el('a.channel-events', { href: `#/events?streamer=${enc(streamerId)}` }, 'Events');
      feeds = known
        ? el('p.feeds', null,
          el('a', { href: `/feeds/channels/${enc(known)}.atom`, type: 'application/atom+xml' }, 'Atom feed'), ' · ',
          el('a', { href: `/feeds/channels/${enc(known)}.m3u`, type: 'audio/x-mpegurl' }, 'M3U playlist'), ' · ',
          el('a', { href: `/feeds/channels/${enc(known)}/events.atom`, type: 'application/atom+xml' }, 'events feed'), ' · ',
          events)
        : el('p.feeds', null, events);
    } else {
      heading = el('h1', null, 'Latest captures');
      document.title = 'vodprobe';
      feeds = el('p.feeds', null,
        el('a', { href: '/feeds/captures.atom', type: 'application/atom+xml' }, 'Atom feed of the captures'), ' · ',
        el('a', { href: '/feeds/events.atom', type: 'application/atom+xml' }, 'of the events'), ' · ',
        el('a', { href: '/feeds/events.atom?kind=deleted,sub_only', type: 'application/atom+xml' }, 'of deletions'));
    }

    const list = el('ul.vods', null, page.items.map((vod) => vodItem(vod, !streamerId)));
    const pageNumber = Number(params.get('page') || '1');
    const pager = el('nav.pager', { 'aria-label': 'pages' });
    if (params.get('cursor')) {
      const first = new URLSearchParams(params);
      first.delete('cursor');
      first.delete('page');
      pager.append(el('a', { href: `${base}?${first}` }, '« First page'));
    } else {
      pager.append(el('span'));
    }
    if (page.next_cursor) {
      const next = new URLSearchParams(params);
      next.set('cursor', page.next_cursor);
      next.set('page', String(pageNumber + 1));
      pager.append(el('a.next', { href: `${base}?${next}` }, `Page ${pageNumber + 1} »`));
    }
    let empty = null;
    if (!page.items.length) {
      empty = el('p.note', null, page.next_cursor
        ? 'Nothing in this stretch of the archive; the next page looks further back.'
        : 'No broadcasts match.');
    }
    show(heading, feeds, filters, list, empty, pager);
  }

  function vodItem(vod, withChannel) {
    const href = `#/vod/${enc(vod.stream_id)}/${enc(vod.start_unix)}`;
    return el('li.vod', { 'data-stream-id': vod.stream_id, 'data-language': vod.language, 'data-game-id': vod.game_id,
      'data-followed': vod.followed ? 'true' : 'false' },
      el('a.vod-title', { href }, vod.title || '(no title)'),
      el('div.meta', null,
        withChannel ? el('a.login', { href: `#/channel/${enc(vod.streamer_id)}` }, vod.login) : null,
        vod.followed ? el('span.badge.followed', { title: 'a followed channel' }, 'followed') : null,
        el('span', null, vod.game_name || 'no category'),
        el('span', null, languageName(vod.language)),
        el('span', null, when(vod.start_time)),
        vod.duration_seconds !== null ? el('span', null, clock(vod.duration_seconds)) : null,
        statusBadge(vod.status),
        segmentsBadge(vod),
        audioBadge(vod),
        rebuiltBadge(vod),
        atRiskBadge(vod),
        el('span', null, visibility(vod.public)),
        mutedShare(vod) ? el('span', null, mutedShare(vod)) : null));
  }

  // ---- streamer search as you type ------------------------------------------------------

  let searchTimer = 0;
  let searchSequence = 0;

  function hideSuggestions() {
    suggestions.hidden = true;
    suggestions.replaceChildren();
  }

  async function runSearch() {
    const q = searchBox.value.trim();
    const sequence = ++searchSequence;
    if (!q) {
      hideSuggestions();
      return;
    }
    let answer;
    try {
      answer = await api(`/api/v1/streamers?limit=10&q=${enc(q)}`);
    } catch (error) {
      answer = { items: [], error };
    }
    if (sequence !== searchSequence) return;
    const items = answer.items.map((s) => el('li', null,
      el('a', { href: `#/channel/${enc(s.streamer_id)}?login=${enc(s.login)}` },
        el('span.login', null, s.login),
        s.matched_login !== s.login ? el('span.sub', null, `was ${s.matched_login}`) : null,
        el('span.sub', null, `${s.broadcasts} broadcast${s.broadcasts === 1 ? '' : 's'}`))));
    if (!items.length) items.push(el('li', null, el('span.sub', null, answer.error ? 'search failed' : 'no streamer found')));
    suggestions.replaceChildren(...items);
    suggestions.hidden = false;
  }

  searchBox.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 150);
  });
  searchBox.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') hideSuggestions();
    if (event.key === 'Enter') {
      const first = suggestions.querySelector('a');
      if (first) location.hash = first.getAttribute('href');
    }
    if (event.key === 'ArrowDown') {
      const first = suggestions.querySelector('a');
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  document.addEventListener('click', (event) => {
    if (!event.target.closest || !event.target.closest('.search')) hideSuggestions();
  });

  // ---- a broadcast: facts, player, copy buttons -----------------------------------------

  let player = null;
  function stopPlayer() {
    if (player && player.hls) player.hls.destroy();
    if (player && player.video) {
      player.video.removeAttribute('src');
      player.video.load();
    }
    player = null;
  }

  const shellQuote = (text) => `'${String(text).replace(/'/g, "'\\''")}'`;

  function copyRow(label, text) {
    const input = el('input', { type: 'text', readonly: true, 'aria-label': label });
    input.value = text;
    const button = el('button', { type: 'button' }, 'Copy');
    button.addEventListener('click', async () => {
      let copied = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(text);
          copied = true;
        }
      } catch (_) {
        copied = false;
      }
      if (!copied) {
        // Plain http on a LAN address is not a secure context: fall back to a selection.
        input.focus();
        input.select();
        try {
          copied = document.execCommand('copy');
        } catch (_) {
          copied = false;
        }
      }
      button.textContent = copied ? 'Copied' : 'Press Ctrl+C';
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
    return el('div.copy', null, el('label', null, label), el('div.copyline', null, input, button));
  }

  // Muted stretches from the playlist the appliance serves: segments whose URI says -muted.
  function mutedRanges(text) {
    const ranges = [];
    let t = 0;
    let length = null;
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line.startsWith('#EXTINF:')) {
        length = parseFloat(line.slice(8)) || 0;
      } else if (line && !line.startsWith('#')) {
        const seconds = length || 0;
        if (/-muted\.[a-z0-9]+(\?|$)/i.test(line)) {
          const last = ranges[ranges.length - 1];
          if (last && Math.abs(last[1] - t) < 0.001) last[1] = t + seconds;
          else ranges.push([t, t + seconds]);
        }
        t += seconds;
        length = null;
      }
    }
    return { ranges, total: t };
  }

  function playerSection(vod) {
    const video = el('video', { controls: true, playsinline: true, preload: 'metadata' });
    const status = el('span.note', { 'aria-live': 'polite' });
    const timeline = el('div.timeline', { title: 'muted parts are marked; click to seek' });
    const head = el('span.head');
    timeline.append(head);
    const legend = el('div.legend');
    let total = vod.duration_seconds || 0;

    const absolute = (path) => new URL(path, location.href).href;
    const sources = [['', vod.qualities[0] ? `${vod.qualities[0]} (archived)` : 'archived', vod.playlist_url]];
    for (const quality of vod.qualities.slice(1)) {
      sources.push([quality, quality, `/vods/${enc(vod.stream_id)}/${enc(vod.start_unix)}/${enc(quality)}.m3u8`]);
    }

    function load(url, startPosition) {
      if (player && player.hls) player.hls.destroy();
      if (window.Hls && window.Hls.isSupported()) {
        const hls = new window.Hls({ startPosition });
        hls.on(window.Hls.Events.ERROR, (_, data) => {
          if (data.fatal) status.textContent = `playback failed: ${data.details}`;
        });
        hls.loadSource(absolute(url));
        hls.attachMedia(video);
        player = { hls, video };
      } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
        video.src = absolute(url);
        if (startPosition > 0) video.currentTime = startPosition;
        player = { hls: null, video };
      } else {
        status.textContent = 'This browser cannot play HLS; copy the playlist URL into mpv below.';
      }
    }

    const controls = el('div.controls');
    // '' or '?audio=original', as the audio choice (offered while the originals answer) says.
    const audioSuffix = () => {
      const picked = controls.querySelector('select[name=audio]');
      return picked ? picked.value : '';
    };
    if (sources.length > 1) {
      const choice = el('select', { name: 'quality', 'aria-label': 'quality' },
        sources.map(([value, label]) => el('option', { value }, label)));
      choice.addEventListener('change', () => {
        const source = sources.find(([value]) => value === choice.value) || sources[0];
        const at = video.currentTime;
        const paused = video.paused;
        load(source[2] + audioSuffix(), at);
        if (!paused) video.play().catch(() => {});
      });
      controls.append(el('label', null, 'Quality ', choice));
    }
    if (vod.original_audio === 'available') {
      const audio = el('select', { name: 'audio', 'aria-label': 'audio' },
        el('option', { value: '' }, 'muted (lasts)'),
        el('option', { value: '?audio=original' }, 'original (while Twitch serves it)'));
      audio.addEventListener('change', () => {
        const picked = controls.querySelector('select[name=quality]');
        const source = sources.find(([value]) => value === (picked ? picked.value : '')) || sources[0];
        const at = video.currentTime;
        const paused = video.paused;
        load(source[2] + audio.value, at);
        if (!paused) video.play().catch(() => {});
      });
      controls.append(el('label', null, 'Audio ', audio));
    }
    controls.append(status);

    timeline.addEventListener('click', (event) => {
      const box = timeline.getBoundingClientRect();
      if (total > 0 && box.width > 0) video.currentTime = ((event.clientX - box.left) / box.width) * total;
    });
    video.addEventListener('timeupdate', () => {
      if (total > 0) head.style.left = `${Math.min(100, (100 * video.currentTime) / total)}%`;
    });

    fetch(vod.playlist_url)
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(response.status))))
      .then((text) => {
        const found = mutedRanges(text);
        if (found.total > 0) total = found.total;
        for (const [from, to] of found.ranges) {
          const mark = el('span.muted', { title: `muted ${clock(from)}–${clock(to)}` });
          mark.style.left = `${(100 * from) / total}%`;
          mark.style.width = `${Math.max(0.3, (100 * (to - from)) / total)}%`;
          timeline.insertBefore(mark, head);
        }
        legend.replaceChildren(found.ranges.length
          ? el('span', null, el('span.swatch'), `Muted: ${found.ranges.map(([a, b]) => `${clock(a)}–${clock(b)}`).join(', ')}`)
          : 'Nothing muted.');
      })
      .catch(() => legend.replaceChildren('The playlist could not be read for muted parts.'));

    load(vod.playlist_url, -1);
    return el('section', { id: 'player' }, el('div.player', null, video), timeline, legend, controls);
  }

  function fact(term, ...value) {
    return [el('dt', null, term), el('dd', null, ...value)];
  }

  async function vodPage(current, streamId, start) {
    const answer = await api(`/api/v1/vods/${enc(streamId)}`);
    if (current !== generation) return;
    const vod = answer.items.find((item) => String(item.start_unix) === start);
    if (!vod) throw new Error(`no broadcast ${streamId} started at ${start}`);
    document.title = `${vod.title || vod.login} – vodprobe`;

    const byline = el('p.meta', null,
      el('a.login', { href: `#/channel/${enc(vod.streamer_id)}` }, vod.login),
      el('span', null, vod.game_name || 'no category'),
      el('span', null, languageName(vod.language)),
      el('span', null, when(vod.start_time)),
      statusBadge(vod.status),
      segmentsBadge(vod),
      audioBadge(vod),
      rebuiltBadge(vod),
      atRiskBadge(vod));

    let segments = 'not checked yet';
    if (vod.segments_state === 'ok') segments = `first, middle and last answered (${when(vod.segments_checked_at)})`;
    if (vod.segments_state === 'partial') segments = `some answer no more (${when(vod.segments_checked_at)})`;
    if (vod.segments_state === 'gone') segments = `none answers (${when(vod.segments_checked_at)})`;

    let muted = '–';
    if (vod.segments) {
      muted = `${mutedShare(vod) || 'nothing muted'} (${vod.muted_segments} of ${vod.segments} segments)`;
    }
    const facts = el('dl.facts', null,
      fact('Duration', clock(vod.duration_seconds)),
      fact('Muted', muted),
      fact('Visibility', visibility(vod.public)),
      fact('Started', when(vod.start_time)),
      fact('Ended', vod.ended_at ? when(vod.ended_at) : 'still live or unknown'),
      fact('Peak viewers', String(vod.max_viewers)),
      fact('Held by', vod.domains.length ? el('ul', null, vod.domains.map((d) => el('li', null, d))) : '–'),
      fact('Qualities', vod.qualities.length ? vod.qualities.join(', ') : '–'),
      fact('Timestamp form', vod.timestamp_form || '–'),
      fact('Container', vod.container || '–'),
      fact('Captured', when(vod.fetched_at)),
      vod.status === 'found' ? fact('Segments', segments) : [],
      vod.segments_lost_at ? fact('Segments lost', when(vod.segments_lost_at)) : [],
      vod.original_audio ? fact('Original audio', vod.original_audio === 'available'
        ? el('span', null, 'still answers (', when(vod.original_audio_seen_at), '); likely until ',
          when(vod.original_audio_until), ', about a day after the mute pass')
        : el('span', null, 'gone since the muting: only the silent copies play')) : [],
      fact('Stream id', vod.stream_id),
      fact('Streamer id', vod.streamer_id));

    const parts = [el('h1.title', null, vod.title || '(no title)'), byline];
    if (vod.playlist_url) {
      const url = new URL(vod.playlist_url, location.href).href;
      const file = `${String(vod.login).replace(/[^A-Za-z0-9_-]/g, '_')}_${vod.stream_id}_${vod.start_unix}.mp4`;
      if (atRisk(vod)) {
        parts.push(el('p.note.at-risk', null,
          `At risk: Twitch may delete this broadcast at ${when(vod.at_risk_until)}. Save it now:`),
        copyRow('Save with ffmpeg', `ffmpeg -i ${shellQuote(url)} -c copy ${shellQuote(file)}`));
      }
      parts.push(playerSection(vod));
      parts.push(el('h2', null, 'Take it with you'),
        copyRow('Playlist URL', url),
        vod.master_playlist_url ? copyRow('Master playlist (every quality)', new URL(vod.master_playlist_url, location.href).href) : null,
        copyRow('Watch with mpv', `mpv ${shellQuote(url)}`),
        copyRow('Save with ffmpeg', `ffmpeg -i ${shellQuote(url)} -c copy ${shellQuote(file)}`));
      if (vod.original_audio === 'available') {
        // The muted parts with their original sound, while Twitch still serves it.
        const original = `${url}?audio=original`;
        parts.push(el('p.note', null, 'Muted parts still have their original audio, likely until ',
          when(vod.original_audio_until), ': ', el('a', { href: original }, 'playlist with the original audio'), '.'),
        copyRow('Save with the original audio', `ffmpeg -i ${shellQuote(original)} -c copy ${shellQuote(file)}`));
      }
    } else if (vod.segments_state === 'gone') {
      parts.push(el('p.note.segments-gone', null,
        'Not playable: the playlist was archived, but its segments no longer answer on the domain that holds it.'));
    } else {
      parts.push(el('p.note', null, vod.status === 'not_found'
        ? 'No playlist was found for this broadcast on any domain.'
        : 'No playlist yet: the broadcast is still being probed.'));
    }
    parts.push(el('h2', null, 'Details'), facts);
    const restarts = answer.items.filter((item) => item !== vod);
    if (restarts.length) {
      parts.push(el('h2', null, 'Other broadcasts with this stream id'),
        el('ul.vods', null, restarts.map((item) => vodItem(item, false))));
    }
    show(...parts);
  }

  // ---- domain health ----------------------------------------------------------------------

  async function domainsPage(current) {
    const answer = await api('/api/v1/domains');
    if (current !== generation) return;
    document.title = 'Domains – vodprobe';
    const rows = answer.items.map((d) => el('tr', null,
      el('td', null, d.url),
      el('td', null, el(`span.badge.health-${d.health}`, null, d.health)),
      el('td', null, d.enabled ? 'yes' : 'no'),
      el('td', null, d.probe),
      el('td', null, when(d.last_success)),
      el('td', null, d.last_failure || '–'),
      el('td', null, String(d.hits))));
    const head = el('tr', null, ['Domain', 'Health', 'Enabled', 'Probe', 'Last success', 'Last failure', 'Hits']
      .map((name) => el('th', { scope: 'col' }, name)));
    show(el('h1', null, 'Domains'),
      el('div.scroll', null, el('table.domains', null, el('thead', null, head), el('tbody', null, rows))));
  }

  // ---- lifecycle events ---------------------------------------------------------------------

  const EVENT_KINDS = ['live', 'ended', 'captured', 'muted', 'original_audio_gone', 'sub_only', 'unlisted',
    'deleted', 'segments_partial', 'segments_gone', 'title_changed', 'category_changed', 'renamed'];
  const kindName = (kind) => kind.replace(/_/g, ' ');

  // Local midnight as unix seconds: "today" is the reader's day.
  function startOfToday() {
    const today = new Date();
    today.setHours(0, 0, 0, 0);
    return Math.floor(today.getTime() / 1000);
  }

  async function eventsPage(current, params) {
    const query = new URLSearchParams();
    for (const name of ['kind', 'since', 'streamer', 'cursor']) {
      if (params.get(name)) query.set(name, params.get(name));
    }
    query.set('limit', '50');
    const page = await api(`/api/v1/events?${query}`);
    if (current !== generation) return;
    document.title = 'Events – vodprobe';

    const kind = params.get('kind') || '';
    function navigate() {
      const next = new URLSearchParams();
      if (picker.value) next.set('kind', picker.value);
      if (params.get('streamer')) next.set('streamer', params.get('streamer'));
      location.hash = next.toString() ? `#/events?${next}` : '#/events';
    }
    const choices = [['', 'All kinds'], ...EVENT_KINDS.map((k) => [k, kindName(k)])];
    if (kind && !EVENT_KINDS.includes(kind)) choices.push([kind, kindName(kind)]);
    const filter = select('kind', 'Kind', choices, kind, navigate);
    const picker = filter.querySelector('select');
    const quick = el('p.quick', null,
      el('a', { href: '#/events' }, 'All'), ' · ',
      el('a', { href: `#/events?kind=deleted&since=${startOfToday()}` }, 'Deleted today'), ' · ',
      el('a', { href: '#/events?kind=muted' }, 'Muted'), ' · ',
      el('a', { href: '#/events?kind=segments_gone' }, 'Segments gone'));

    const rows = page.items.map((event) => {
      const start = Math.floor(Date.parse(event.start_time) / 1000);
      return el('tr.event', { 'data-id': event.id, 'data-kind': event.kind, 'data-stream-id': event.stream_id },
        el('td', null, when(event.at)),
        el('td', null, el(`span.badge.event-${event.kind}`, null, kindName(event.kind))),
        el('td.title', null, el('a.event-vod', { href: `#/vod/${enc(event.stream_id)}/${enc(start)}` },
          event.title || `broadcast ${event.stream_id}`), ' ', el('span.sub', null, when(event.start_time))),
        el('td', null, el('a.login', { href: `#/channel/${enc(event.streamer_id)}` }, event.login || `channel ${event.streamer_id}`)),
        el('td.detail', null, event.detail || ''));
    });
    const head = el('tr', null, ['When', 'Kind', 'Broadcast', 'Channel', 'Detail']
      .map((name) => el('th', { scope: 'col' }, name)));
    const table = rows.length
      ? el('div.scroll', null, el('table.events', null, el('thead', null, head), el('tbody', null, rows)))
      : el('p.note', null, 'No events match.');

    const pageNumber = Number(params.get('page') || '1');
    const pager = el('nav.pager', { 'aria-label': 'pages' });
    if (params.get('cursor')) {
      const first = new URLSearchParams(params);
      first.delete('cursor');
      first.delete('page');
      pager.append(el('a', { href: `#/events?${first}` }, '« Newest'));
    } else {
      pager.append(el('span'));
    }
    if (page.next_cursor) {
      const next = new URLSearchParams(params);
      next.set('cursor', page.next_cursor);
      next.set('page', String(pageNumber + 1));
      pager.append(el('a.next', { href: `#/events?${next}` }, `Page ${pageNumber + 1} »`));
    }
    const streamer = params.get('streamer');
    const heading = streamer
      ? el('h1', null, 'Events of ', el('a.login', { href: `#/channel/${enc(streamer)}` },
        (page.items[0] && page.items[0].login) || `channel ${streamer}`), ' ', el('a.sub', { href: '#/events' }, '(all channels)'))
      : el('h1', null, 'Events');
    show(heading, quick, el('div.filters', null, filter), table, pager);
  }

  // ---- status: small charts of the last day -------------------------------------------------

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  // Drawn in the units it is shown at on a phone too, so axis labels stay readable there.
  const CHART = { width: 600, height: 110, left: 44, right: 8, top: 8, bottom: 20 };
  const fitCharts = () => { CHART.width = main.clientWidth < 560 ? 360 : 600; };
  let chartIds = 0;

  // A chart over the last day: x is time (from..to), `draw(x, y)` returns the marks. Axis labels
  // on both axes; title and desc name it for screen readers, and a table follows with the numbers.
  function chart(name, summary, from, to, top, draw, unit) {
    const id = `chart-${++chartIds}`;
    const { width, height, left, right, bottom } = CHART;
    const plotTop = CHART.top;
    const plotWidth = width - left - right;
    const plotHeight = height - plotTop - bottom;
    const x = (t) => left + ((t - from) / (to - from)) * plotWidth;
    const y = (v) => plotTop + plotHeight - (top > 0 ? (v / top) * plotHeight : 0);
    const ticks = [];
    for (let h = 24; h >= 0; h -= 6) {
      const t = to - h * 3600;
      ticks.push(svg('line', { class: 'grid', x1: x(t), x2: x(t), y1: plotTop, y2: plotTop + plotHeight }),
        svg('text', { class: 'axis', x: x(t), y: height - 5, 'text-anchor': h === 24 ? 'start' : h === 0 ? 'end' : 'middle' },
          h === 0 ? 'now' : `−${h} h`));
    }
    const yLabels = top > 0 ? [
      svg('text', { class: 'axis', x: left - 4, y: plotTop + 9, 'text-anchor': 'end' }, `${formatNumber(top)}${unit}`),
      svg('text', { class: 'axis', x: left - 4, y: plotTop + plotHeight, 'text-anchor': 'end' }, `0${unit}`),
    ] : [];
    return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': `${id}-t ${id}-d` },
      svg('title', { id: `${id}-t` }, name),
      svg('desc', { id: `${id}-d` }, summary),
      svg('line', { class: 'axis-line', x1: left, x2: width - right, y1: plotTop + plotHeight, y2: plotTop + plotHeight }),
      svg('line', { class: 'axis-line', x1: left, x2: left, y1: plotTop, y2: plotTop + plotHeight }),
      ticks, yLabels, draw(x, y, plotTop + plotHeight));
  }

  function formatNumber(n) {
    return n >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
  }

  // The numbers behind a chart, hour by hour, folded away for sighted readers.
  function numbers(caption, columns, rows) {
    return el('details.numbers', null, el('summary', null, 'Numbers'),
      el('div.scroll', null, el('table', null, el('caption', null, caption),
        el('thead', null, el('tr', null, columns.map((c) => el('th', { scope: 'col' }, c)))),
        el('tbody', null, rows.map((row) => el('tr', null, row.map((cell) => el('td', null, String(cell)))))))));
  }

  const hourLabel = (t) => {
    const date = new Date(t * 1000);
    return `${pad(date.getHours())}:00`;
  };

  async function statusPage(current) {
    const data = await api('/api/v1/status/series');
    if (current !== generation) return;
    document.title = 'Status – vodprobe';
    fitCharts();
    const to = Date.parse(data.to) / 1000;
    const from = Date.parse(data.from) / 1000;
    const step = data.bucket_seconds;
    const buckets = data.items.map((b) => ({ ...b, t: Date.parse(b.at) / 1000 }));

    // Hourly aggregates, the last 24 hours ending with the current one.
    const hourEnd = Math.ceil(to / 3600) * 3600;
    const hours = [];
    for (let h = 24; h >= 1; h--) {
      const start = hourEnd - h * 3600;
      const inside = buckets.filter((b) => b.t >= start && b.t < start + 3600);
      hours.push({
        start,
        captures: inside.reduce((sum, b) => sum + b.captures, 0),
        requests: inside.reduce((sum, b) => sum + b.requests, 0),
        budget: inside.length ? Math.max(...inside.map((b) => b.budget_used)) : null,
        queue: inside.length ? Math.max(...inside.map((b) => b.queue_depth)) : null,
      });
    }

    const capturesTop = Math.max(1, ...hours.map((h) => h.captures));
    const captured = hours.reduce((sum, h) => sum + h.captures, 0);
    const capturesChart = chart('Captures per hour', `${captured} captures in the last day; at most ${capturesTop} in an hour.`,
      from, to, capturesTop, (x, y, base) => hours.filter((h) => h.captures > 0).map((h) => {
        const x0 = Math.max(x(h.start), x(from));
        const x1 = Math.min(x(h.start + 3600), x(to));
        return svg('rect', { class: 'bar captures', x: x0 + 1, y: y(h.captures), width: Math.max(1, x1 - x0 - 2), height: base - y(h.captures) },
          svg('title', null, `${hourLabel(h.start)}: ${h.captures}`));
      }), '');

    const budgetTop = Math.max(1, ...buckets.map((b) => b.budget_used * 100));
    const used = buckets.length ? Math.max(...buckets.map((b) => b.budget_used)) : 0;
    const budgetChart = chart('Request budget used', `Share of the CDN request budget used per five minutes; at most ${Math.round(used * 100)} %.`,
      from, to, budgetTop, (x, y, base) => buckets.map((b) => svg('rect', {
        class: 'bar budget', x: x(b.t), y: y(b.budget_used * 100), width: Math.max(1, x(b.t + step) - x(b.t) - 0.5),
        height: base - y(b.budget_used * 100),
      }, svg('title', null, `${Math.round(b.budget_used * 100)} % (${b.requests} requests)`))), ' %');

    const queueTop = Math.max(1, ...buckets.map((b) => b.queue_depth));
    const queueChart = chart('Queue depth', `Broadcasts waiting for a probe, the deepest per five minutes; at most ${queueTop}.`,
      from, to, queueTop, (x, y, base) => {
        if (!buckets.length) return [];
        const points = buckets.map((b) => `${x(b.t).toFixed(1)},${y(b.queue_depth).toFixed(1)} ${x(b.t + step).toFixed(1)},${y(b.queue_depth).toFixed(1)}`);
        const line = `M${points.join(' L')}`;
        const first = x(buckets[0].t).toFixed(1);
        const last = x(buckets[buckets.length - 1].t + step).toFixed(1);
        return [svg('path', { class: 'area queue', d: `${line} L${last},${base} L${first},${base} Z` }),
          svg('path', { class: 'line queue', d: line })];
      }, '');

    // Domain health: one strip per domain, a cell per bucket.
    const rowHeight = 16;
    const domainRows = data.domains.length;
    const healthHeight = CHART.top + domainRows * rowHeight + CHART.bottom;
    const { width, left, right } = CHART;
    const hx = (t) => left + ((t - from) / (to - from)) * (width - left - right);
    const strips = data.domains.map((url, index) => {
      const yTop = CHART.top + index * rowHeight;
      const name = url.replace(/^https?:\/\//, '').replace(/\/$/, '');
      return svg('g', { class: 'strip' },
        svg('text', { class: 'axis', x: left - 4, y: yTop + 11, 'text-anchor': 'end' }, String(index + 1)),
        buckets.filter((b) => b.domains[url]).map((b) => svg('rect', {
          class: `cell health-${b.domains[url]}`, x: hx(b.t), y: yTop + 2, width: Math.max(1, hx(b.t + step) - hx(b.t)), height: rowHeight - 4,
        }, svg('title', null, `${name}: ${b.domains[url]}`))));
    });
    const healthTicks = [];
    for (let h = 24; h >= 0; h -= 6) {
      const t = to - h * 3600;
      healthTicks.push(svg('text', { class: 'axis', x: hx(t), y: healthHeight - 5, 'text-anchor': h === 24 ? 'start' : h === 0 ? 'end' : 'middle' },
        h === 0 ? 'now' : `−${h} h`));
    }
    const downs = data.domains.map((url) => buckets.filter((b) => b.domains[url] === 'down').length);
    const healthChart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${healthHeight}`, role: 'img', 'aria-labelledby': 'chart-health-t chart-health-d' },
      svg('title', { id: 'chart-health-t' }, 'Domain health'),
      svg('desc', { id: 'chart-health-d' }, data.domains.map((url, i) => `${i + 1}: ${url}, down in ${downs[i]} of ${buckets.length} five-minute stretches`).join('; ') || 'No domain sampled yet.'),
      strips, healthTicks);

    const hourRows = hours.filter((h) => h.budget !== null || h.captures > 0).map((h) => [hourLabel(h.start), h.captures, h.requests,
      h.budget === null ? '–' : `${Math.round(h.budget * 100)} %`, h.queue === null ? '–' : h.queue]);
    const figure = (title, svgNode, ...rest) => el('figure.chart-box', null, el('figcaption', null, title), svgNode, ...rest);
    show(el('h1', null, 'Status'),
      el('p.note', null, `The last day in ${step / 60}-minute steps, as the appliance sampled it; times it was not running stay empty.`),
      el('div.charts', null,
        figure('Captures per hour', capturesChart),
        figure('Request budget used', budgetChart),
        figure('Queue depth', queueChart),
        figure('Domain health', healthChart,
          el('ol.domain-key', null, data.domains.map((url) => el('li', null, url))),
          el('p.legend', null, el('span.swatch.health-up'), 'up ', el('span.swatch.health-down'), 'down ',
            el('span.swatch.health-unknown'), 'not asked yet'))),
      numbers('Each hour of the last day', ['Hour', 'Captures', 'Requests', 'Budget used (peak)', 'Queue (deepest)'], hourRows));
    // Redrawn each minute while it is the page shown (the appliance samples each minute).
    setTimeout(() => {
      if (current === generation && !document.hidden) route();
    }, 60_000);
  }

  // ---- the health banner: what /healthz says is wrong, at the top of every view -----------

  const banner = document.getElementById('health');
  const PARTS = [['listing', 'Live listing'], ['store', 'Store'], ['config', 'Configuration']];
  const HEALTH_EVERY_MS = 20_000;
  let healthTimer = null;
  let healthAsking = false;

  function showHealth(health) {
    if (!health || health.status !== 'degraded') {
      banner.hidden = true;
      banner.replaceChildren();
      return;
    }
    const failing = PARTS.filter(([key]) => health[key] && health[key].ok === false);
    const reasons = failing.map(([key, label]) => el('li', { 'data-part': key },
      el('strong', null, `${label}: `), String(health[key].message || 'failing')));
    banner.replaceChildren(
      el('p.health-head', null, 'vodprobe is degraded'),
      reasons.length ? el('ul', null, reasons) : null);
    banner.hidden = false;
  }

  // Asks /healthz now and then every HEALTH_EVERY_MS; one question at a time.
  async function checkHealth() {
    clearTimeout(healthTimer);
    if (!healthAsking) {
      healthAsking = true;
      try {
        showHealth(await api('/healthz'));
      } catch (_) {
        // Unreachable or overloaded: keep what is shown, ask again later.
      } finally {
        healthAsking = false;
      }
    }
    healthTimer = setTimeout(checkHealth, HEALTH_EVERY_MS);
  }

  window.addEventListener('hashchange', route);
  window.addEventListener('hashchange', checkHealth);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) checkHealth();
  });
  checkHealth();
  route();
})();
