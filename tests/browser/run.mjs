// Drives Debian's headless chromium (playwright-core, no downloaded browser) against a running
// `vodprobe serve` whose simulated Twitch holds the broadcasts tests/web.rs describes in the
// third argument. Exits 0 and prints `BROWSER OK {summary}` when every check passed; otherwise
// prints the failure and exits 1. Screenshots go to the second argument's directory. The health
// banner is checked first (the listing is refused); when seen, the script writes the file named by
// expect.banner_signal, the test lifts the refusal, and the script checks that it goes.
//
//   node tests/browser/run.mjs http://127.0.0.1:PORT target/web-screenshots '{"total": 5, ...}'

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [base, shots, expectJson] = process.argv.slice(2);
if (!base || !shots || !expectJson) {
  console.error('usage: node run.mjs BASE_URL SCREENSHOT_DIR EXPECT_JSON');
  process.exit(2);
}
const expect = JSON.parse(expectJson);
const executablePath = process.env.VODPROBE_CHROMIUM || '/usr/bin/chromium';
const WAIT = { timeout: 15_000 };
const started = Date.now();

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

fs.mkdirSync(shots, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vodprobe-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});

const problems = [];
const page = context.pages()[0] || (await context.newPage());
page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
page.on('console', (message) => {
  if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
});
// An alert means a title's <script> ran.
page.on('dialog', async (dialog) => {
  problems.push(`a dialog opened (${dialog.message()}): a title was run as script`);
  await dialog.dismiss();
});

const summary = {};
const vodCount = () => page.locator('li.vod').count();
async function waitForVods(count) {
  await page.waitForFunction((n) => document.querySelectorAll('li.vod').length === n, count, WAIT);
}
async function shot(name, fullPage) {
  const file = path.join(shots, name);
  await page.screenshot({ path: file, fullPage });
  summary.screenshots = [...(summary.screenshots || []), file];
}

try {
  // 0. The listing is refused (tests/web.rs made it so): every view starts with the health
  //    banner naming the listing, why and what to do, as text. Then tell the test it was seen,
  //    so it makes the listing answer again, and see the banner go.
  await page.goto(`${base}/#/domains`);
  await page.waitForFunction((text) => {
    const banner = document.getElementById('health');
    return banner && !banner.hidden && banner.textContent.includes(text);
  }, expect.banner_text, WAIT);
  const banner = await page.evaluate(() => {
    const node = document.getElementById('health');
    return {
      role: node.getAttribute('role'),
      parts: [...node.querySelectorAll('li')].map((li) => li.dataset.part),
      text: node.textContent,
      tags: [...new Set([...node.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()))],
      top: node.getBoundingClientRect().top < document.getElementById('main').getBoundingClientRect().top,
      height: node.getBoundingClientRect().height,
    };
  });
  check(banner.role === 'status' || banner.role === 'alert', `the banner is announced (role ${banner.role})`);
  check(banner.parts.includes(expect.banner_part), `the banner names ${expect.banner_part}: ${banner.parts}`);
  check(banner.text.includes('dev.twitch.tv'), `the banner says what to do: ${banner.text}`);
  for (const words of expect.banner_says || []) {
    check(banner.text.includes(words), `the banner says ${words}: ${banner.text}`);
  }
  check(banner.tags.every((tag) => ['p', 'ul', 'li', 'strong'].includes(tag)), `text only: ${banner.tags}`);
  check(banner.top && banner.height > 0, 'the banner is shown above the view');
  summary.banner = banner.text;
  await shot('banner-desktop.png', false);
  fs.writeFileSync(expect.banner_signal, 'seen\n');

  // The test now makes the listing answer again: in the same document (no reload), a
  // navigation or the page's own poll of /healthz takes the banner away.
  await page.evaluate(() => { window.__sameDocument = true; });
  const answering = Date.now();
  for (let i = 0; !(await page.evaluate(() => document.getElementById('health').hidden)); i++) {
    check(Date.now() - answering < 60_000, 'the banner went within 60 s of the listing answering');
    await page.locator(`.top nav a[href="${i % 2 ? '#/domains' : '#/'}"]`).click();
    await page.waitForTimeout(1000);
  }
  check(await page.evaluate(() => window.__sameDocument === true
    && document.getElementById('health').childElementCount === 0), 'gone without a reload');
  summary.banner_gone_after_s = (Date.now() - answering) / 1000;

  // 1. The front page lists the captures, newest first, with the headers it promises.
  const response = await page.goto(`${base}/`);
  const headers = response.headers();
  check(response.status() === 200, `GET / answered ${response.status()}`);
  check((headers['content-security-policy'] || '').includes("script-src 'self'"), 'a strict CSP on /');
  summary.csp = headers['content-security-policy'];
  await waitForVods(expect.total);
  const titles = await page.locator('a.vod-title').allTextContents();
  summary.front_titles = titles;

  // The title with markup is text: shown literally, no element made from it, nothing ran.
  check(titles.includes(expect.script_title), `the title ${expect.script_title} is shown as text`);
  const injected = await page.evaluate(() => ({
    scripts: document.querySelectorAll('#main script, #main b, #main img').length,
    flag: window.__injected === true,
  }));
  check(injected.scripts === 0 && !injected.flag, 'no element or script from a title');
  await shot('front-desktop.png', false);

  // Feeds: announced in the head and linked from the front page.
  const feedLinks = await page.evaluate(() => ({
    head: document.querySelector('link[rel="alternate"][type="application/atom+xml"]')?.getAttribute('href'),
    front: [...document.querySelectorAll('#main .feeds a')].map((a) => a.getAttribute('href')),
  }));
  check(feedLinks.head === '/feeds/captures.atom' && feedLinks.front.includes('/feeds/captures.atom'),
    `the captures feed is linked: ${JSON.stringify(feedLinks)}`);

  // The capture whose segments are gone says so in the list, the others that theirs answer;
  // its page explains instead of offering a player or a playlist to copy.
  const segmentBadges = await page.locator('li.vod').evaluateAll((items) => Object.fromEntries(
    items.map((li) => [li.dataset.streamId, li.querySelector('.badge[class*="segments-"]')?.textContent || ''])));
  check(segmentBadges[expect.gone_stream_id] === 'segments gone',
    `a "segments gone" badge on ${expect.gone_stream_id}: ${JSON.stringify(segmentBadges)}`);
  check(segmentBadges[expect.partial_stream_id] === 'segments partial',
    `a "segments partial" badge on ${expect.partial_stream_id}: ${JSON.stringify(segmentBadges)}`);
  check(Object.entries(segmentBadges).every(([id, text]) => id === expect.gone_stream_id
    || id === expect.partial_stream_id || text === 'segments ok'),
    `"segments ok" on the others: ${JSON.stringify(segmentBadges)}`);
  summary.segment_badges = segmentBadges;
  // The rebuilt capture and the muted one whose originals still answer say so in the list.
  const badgesOf = (id) => page.locator(`li.vod[data-stream-id="${id}"] .badge`).allTextContents();
  const rebuiltBadges = await badgesOf(expect.rebuilt_stream_id);
  check(rebuiltBadges.includes('rebuilt'), `a "rebuilt" badge on ${expect.rebuilt_stream_id}: ${rebuiltBadges}`);
  const audioBadges = await badgesOf(expect.audio_stream_id);
  check(audioBadges.some((b) => b.startsWith('original audio until ')),
    `an "original audio until" badge on ${expect.audio_stream_id}: ${audioBadges}`);
  check((await page.locator('li.vod .badge.rebuilt').count()) === 1, 'one rebuilt capture in the list');
  summary.state_badges = { rebuilt: rebuiltBadges, audio: audioBadges };
  // Their pages say it too: partial and rebuilt still play.
  for (const [path, badge] of [[expect.partial_path, 'segments partial'], [expect.rebuilt_path, 'rebuilt']]) {
    await page.goto(`${base}/#/vod/${path}`);
    // The hash changes within the page: wait for this broadcast's badges, not the last page's.
    const shownIn = () => page.locator('.badge').allTextContents();
    await page.waitForFunction((b) => [...document.querySelectorAll('.badge')].some((e) => e.textContent === b),
      badge, WAIT).catch(() => {});
    const shown = await shownIn();
    check(shown.includes(badge), `"${badge}" on the page of ${path}: ${shown}`);
    check(await page.locator('#player').count() === 1, `a player on the page of ${path}`);
  }
  await page.goto(`${base}/#/vod/${expect.gone_path}`);
  await page.locator('p.note.segments-gone').waitFor(WAIT);
  check(await page.locator('#player').count() === 0, 'no player for a capture whose segments are gone');
  check(await page.locator('.copy input').count() === 0, 'no playlist to copy for a gone capture');
  summary.gone_note = await page.locator('p.note.segments-gone').textContent();

  // 2. Search as you type finds a channel; the channel page lists its broadcasts only.
  await page.locator('#search').pressSequentially(expect.search, { delay: 60 });
  const suggestion = page.locator('#suggestions a', { hasText: expect.search_login });
  await suggestion.first().waitFor(WAIT);
  await suggestion.first().click();
  await page.waitForFunction(() => location.hash.startsWith('#/channel/'), null, WAIT);
  await page.waitForFunction(
    (login) => document.querySelector('h1 .login')?.textContent === login
      && document.querySelectorAll('li.vod').length > 0,
    expect.search_login, WAIT);
  const channelIds = await page.locator('li.vod').evaluateAll((items) => items.map((li) => li.dataset.streamId));
  check(channelIds.length === 1 && channelIds[0] === expect.search_stream_id,
    `the channel page lists ${expect.search_stream_id} only, not ${channelIds}`);
  summary.search = { hash: await page.evaluate(() => location.hash), stream_ids: channelIds };
  const channelFeeds = await page.locator('#main .feeds a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
  const channelFeed = `/feeds/channels/${encodeURIComponent(expect.search_login)}`;
  check(channelFeeds.includes(`${channelFeed}.atom`) && channelFeeds.includes(`${channelFeed}.m3u`),
    `the channel's feeds are linked: ${channelFeeds}`);
  summary.feed_links = { front: feedLinks.front, channel: channelFeeds };
  // The channel's events, one link away.
  await page.locator('#main a.channel-events').click();
  await page.waitForFunction(() => location.hash.startsWith('#/events?streamer=')
    && document.querySelectorAll('tr.event').length > 0, null, WAIT);
  const channelEvents = await page.locator('tr.event').evaluateAll((rows) => rows.map((tr) => tr.dataset.streamId));
  check(channelEvents.every((id) => id === expect.search_stream_id), `only the channel's events: ${channelEvents}`);

  // 3. A filter narrows the list.
  await page.goto(`${base}/#/`);
  await waitForVods(expect.total);
  await page.selectOption('select[name=language]', expect.filter_language);
  await page.waitForFunction(
    ([language, count]) => location.hash.includes(`language=${language}`)
      && document.querySelectorAll('li.vod').length === count,
    [expect.filter_language, expect.filter_count], WAIT);
  const languages = await page.locator('li.vod').evaluateAll((items) => items.map((li) => li.dataset.language));
  check(languages.every((l) => l === expect.filter_language), `only ${expect.filter_language}: ${languages}`);
  summary.filter = { before: expect.total, after: await vodCount(), hash: await page.evaluate(() => location.hash) };

  // 4. The detail page of the broadcast with the <script> title plays it.
  await page.goto(`${base}/#/`);
  await waitForVods(expect.total);
  await page.locator('a.vod-title', { hasText: expect.script_title }).click();
  await page.locator('h1.title').waitFor(WAIT);
  check(await page.locator('h1.title').textContent() === expect.script_title, 'the detail title is text');
  await page.waitForFunction((n) => document.querySelectorAll('.timeline .muted').length === n,
    expect.muted_ranges, WAIT);
  const facts = await page.locator('.facts').textContent();
  check(facts.includes(expect.muted_text), `muted share "${expect.muted_text}" in ${facts}`);
  check(facts.includes(expect.duration_text), `duration "${expect.duration_text}" in ${facts}`);
  check(facts.includes('Original audio') && facts.includes('likely until'),
    `the original audio's state and how long it lasts in ${facts}`);
  const audioChoices = await page.locator('select[name=audio] option').allTextContents();
  check(audioChoices.length === 2, `the player offers the muted and the original audio: ${audioChoices}`);
  const qualities = await page.locator('select[name=quality] option').count();
  check(qualities === expect.qualities, `${expect.qualities} qualities to choose, not ${qualities}`);
  const copies = await page.locator('.copy input').evaluateAll((inputs) => inputs.map((i) => i.value));
  check(copies.some((c) => c.startsWith('mpv ') && c.includes(expect.playlist_path)), `an mpv line: ${copies}`);
  check(copies.some((c) => c.startsWith('ffmpeg -i ')), `an ffmpeg line: ${copies}`);
  summary.copy_lines = copies;

  const playStarted = Date.now();
  await page.evaluate(() => {
    const video = document.querySelector('#player video');
    video.muted = true;
    return video.play().catch(() => {});
  });
  await page.waitForFunction(() => document.querySelector('#player video').currentTime > 0.5, null,
    { timeout: 20_000 });
  summary.playback = await page.evaluate(() => {
    const video = document.querySelector('#player video');
    return { current_time: video.currentTime, duration: video.duration, ready_state: video.readyState };
  });
  summary.playback.seconds_to_half_a_second = (Date.now() - playStarted) / 1000;
  await shot('detail-desktop.png', true);

  // 5. The domain table.
  await page.goto(`${base}/#/domains`);
  await page.waitForFunction((n) => document.querySelectorAll('table.domains tbody tr').length === n,
    expect.domains, WAIT);

  // 5b. Follows: the followed channel carries its badge and the filter keeps it alone.
  await page.goto(`${base}/#/`);
  await waitForVods(expect.total);
  const followedBadges = await page.locator('li.vod .badge.followed').count();
  check(followedBadges === 1, `one broadcast with a "followed" badge, not ${followedBadges}`);
  await page.selectOption('select[name=followed]', 'true');
  await page.waitForFunction(
    (n) => location.hash.includes('followed=true') && document.querySelectorAll('li.vod').length === n,
    expect.followed_count, WAIT);
  const followedIds = await page.locator('li.vod').evaluateAll((items) => items.map((li) => [li.dataset.streamId, li.dataset.followed]));
  check(followedIds.every(([id, followed]) => id === expect.followed_stream_id && followed === 'true'),
    `only the followed channel's broadcast: ${JSON.stringify(followedIds)}`);
  await page.selectOption('select[name=followed]', 'false');
  await page.waitForFunction(
    (n) => location.hash.includes('followed=false') && document.querySelectorAll('li.vod').length === n,
    expect.total - expect.followed_count, WAIT);
  summary.follows = { followed: followedIds, others: await vodCount() };

  // 5c. The events view: newest first, the kinds the sim produced, a kind filter narrows it,
  //     the quick links set their filters, and a row leads to its broadcast.
  await page.locator('.top nav a[href="#/events"]').click();
  await page.locator('table.events tbody tr').first().waitFor(WAIT);
  const events = await page.locator('tr.event').evaluateAll((rows) => rows.map((tr) => ({
    id: Number(tr.dataset.id), kind: tr.dataset.kind, stream: tr.dataset.streamId,
    at: tr.querySelector('time')?.getAttribute('datetime'),
  })));
  for (const kind of expect.event_kinds) {
    check(events.some((e) => e.kind === kind), `a ${kind} event in the view: ${JSON.stringify(events)}`);
  }
  // Newest recorded first: an event is dated when its change happened (an end seen late is
  // dated at the last sighting), so its time may sit a little before one recorded earlier.
  check(events.every((e, i) => Number.isInteger(e.id) && (i === 0 || events[i - 1].id > e.id)),
    `newest recorded first: ${events.map((e) => `${e.id}@${e.at}`)}`);
  await page.selectOption('select[name=kind]', 'segments_gone');
  await page.waitForFunction(() => location.hash.includes('kind=segments_gone')
    && [...document.querySelectorAll('tr.event')].every((tr) => tr.dataset.kind === 'segments_gone')
    && document.querySelectorAll('tr.event').length > 0, null, WAIT);
  const narrowed = await page.locator('tr.event').evaluateAll((rows) => rows.map((tr) => tr.dataset.streamId));
  const goneLogins = await page.locator('tr.event a.login').allTextContents();
  check(goneLogins.includes(expect.gone_login), `the row names its channel ${expect.gone_login}: ${goneLogins}`);
  check(narrowed.length < events.length && narrowed.includes(expect.gone_stream_id),
    `the kind filter narrows ${events.length} events to the gone broadcast's: ${narrowed}`);
  await shot('events-desktop.png', true);
  await page.locator('tr.event a.event-vod').first().click();
  await page.locator('p.note.segments-gone').waitFor(WAIT);
  check((await page.evaluate(() => location.hash)) === `#/vod/${expect.gone_path}`, 'the row leads to its broadcast');
  await page.goto(`${base}/#/events`);
  await page.locator('table.events').waitFor(WAIT);
  await page.locator('.quick a', { hasText: 'Deleted today' }).click();
  await page.waitForFunction(() => location.hash.includes('kind=deleted') && location.hash.includes('since=')
    && document.querySelector('#main p.note')?.textContent === 'No events match.', null, WAIT);
  await page.locator('.quick a', { hasText: 'Muted' }).click();
  await page.waitForFunction(() => location.hash.includes('kind=muted') && document.querySelector('select[name=kind]')?.value === 'muted',
    null, WAIT);
  summary.events = { kinds: [...new Set(events.map((e) => e.kind))], narrowed };

  // 5d. The status page draws its four charts from the appliance's series.
  await page.locator('.top nav a[href="#/status"]').click();
  await page.waitForFunction(() => document.querySelectorAll('svg.chart').length === 4, null, WAIT);
  const charts = await page.evaluate(() => [...document.querySelectorAll('svg.chart')].map((chart) => ({
    title: chart.querySelector('title')?.textContent,
    desc: chart.querySelector('desc')?.textContent,
    labelled: chart.getAttribute('role') === 'img' && Boolean(chart.getAttribute('aria-labelledby')),
    labels: [...chart.querySelectorAll('text.axis')].map((t) => t.textContent),
    bars: [...chart.querySelectorAll('rect')].filter((r) => Number(r.getAttribute('width')) > 0
      && Number(r.getAttribute('height')) > 0).length,
    path: [...chart.querySelectorAll('path')].map((p) => p.getAttribute('d') || '').join(''),
    width: chart.getBoundingClientRect().width,
  })));
  const byTitle = Object.fromEntries(charts.map((c) => [c.title, c]));
  for (const title of ['Captures per hour', 'Request budget used', 'Queue depth', 'Domain health']) {
    const c = byTitle[title];
    check(c && c.labelled && c.desc && c.width > 100, `the ${title} chart is drawn and described: ${JSON.stringify(c)}`);
    check(c.labels.includes('now') && c.labels.includes('−24 h'), `${title} has its time axis: ${c.labels}`);
  }
  check(byTitle['Captures per hour'].bars > 0 && byTitle['Captures per hour'].labels.some((l) => /^\d+$/.test(l) && l !== '0'),
    `captures drawn with a value axis: ${JSON.stringify(byTitle['Captures per hour'])}`);
  check(byTitle['Request budget used'].bars > 0, `budget bars: ${JSON.stringify(byTitle['Request budget used'])}`);
  check(/^M[\d.]+,[\d.]+/.test(byTitle['Queue depth'].path), `a queue line: ${byTitle['Queue depth'].path}`);
  check(byTitle['Domain health'].bars >= expect.domains, `a health cell per domain: ${byTitle['Domain health'].bars}`);
  const numberRows = await page.locator('details.numbers tbody tr').count();
  check(numberRows > 0, 'a table of the numbers');
  summary.status_charts = charts.map(({ title, bars, labels }) => ({ title, bars, labels }));
  await shot('status-desktop.png', true);

  // 6. The same pages at a phone's width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/#/`);
  await waitForVods(expect.total);
  await shot('front-phone.png', false);
  await page.goto(`${base}/#/vod/${expect.vod_path}`);
  await page.locator('h1.title').waitFor(WAIT);
  await page.waitForFunction((n) => document.querySelectorAll('.timeline .muted').length === n,
    expect.muted_ranges, WAIT);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the detail page fits a phone's width (${overflow} px too wide)`);
  await shot('detail-phone.png', true);
  await page.goto(`${base}/#/status`);
  await page.waitForFunction(() => document.querySelectorAll('svg.chart').length === 4, null, WAIT);
  const statusOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(statusOverflow <= 0, `the status page fits a phone's width (${statusOverflow} px too wide)`);
  await shot('status-phone.png', true);

  // 7. The banner stayed away.
  check(await page.evaluate(() => document.getElementById('health').hidden), 'no banner at the end');

  check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
  summary.seconds = (Date.now() - started) / 1000;
  console.log(`BROWSER OK ${JSON.stringify(summary)}`);
  await context.close();
  process.exit(0);
} catch (error) {
  console.error(`BROWSER FAILED at ${page.url()}: ${error.message}`);
  if (problems.length) console.error(`page problems: ${problems.join('; ')}`);
  try {
    await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true });
    console.error(`screenshot: ${path.join(shots, 'failure.png')}`);
  } catch (_) {
    // the page may be gone
  }
  await context.close().catch(() => {});
  process.exit(1);
}
