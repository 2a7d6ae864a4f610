// The clinician worklist page's script: plain JavaScript, no build step (served as /ui/worklist.js). The clinician
// signs in through OpenID Connect (authorization code + PKCE, S256) against the configured issuer, or is launched as a
// SMART on FHIR app (`/ui?iss=<this API>/fhir[&launch=...]`). The tokens stay in sessionStorage (the access token
// refreshed with the refresh token when the issuer gives one); every call goes to the same API as any client:
// /worklist/view and /to-do/view (following their `next` links), /tasks/:id/$approve|$reject|$reschedule|$change-dose,
// /tasks/$bulk-approve, /tasks/:id/questionnaire and /tasks/:id/$complete (a check), /patients/:id/timeline,
// /ui/config (sign-in settings, the kinds of Task to filter by, the Questionnaire extensions, the clinic's time zone).
// Dates and times are shown and picked in the clinic's time zone (CLINIC_TIME_ZONE), named beside them.
'use strict';

const $ = (selector) => document.querySelector(selector);
const SESSION = 'kc-session';
const LOGIN = 'kc-login';
let settings = null;
/** "1 task", "2 tasks": a count with its noun. */
function counted(n, noun) {
  return n + ' ' + noun + (n === 1 ? '' : 's');
}

let nextLink = null;
let items = new Map();
// Which list is shown: awaiting approval (/worklist) or approved and not yet done (/to-do).
let currentList = 'worklist';
const LISTS = {
  worklist: {
    heading: 'Awaiting approval',
    caption: 'Tasks awaiting approval, soonest due first',
    counted: (n) => counted(n, 'task') + ' awaiting approval',
  },
  'to-do': {
    heading: 'To do: approved, not yet done',
    caption: 'Approved tasks not yet done, soonest due first',
    counted: (n) => counted(n, 'approved task') + ' to do',
  },
};

function showList(name) {
  currentList = name;
  for (const id of Object.keys(LISTS)) $('#list-' + id).setAttribute('aria-pressed', String(id === name));
  $('#worklist-heading').textContent = LISTS[name].heading;
  $('#list-caption').textContent = LISTS[name].caption;
  // Approving is the worklist's: the to-do list's Tasks are approved already.
  $('#bulk').hidden = name !== 'worklist';
  $('#select-all').hidden = name !== 'worklist';
  nextLink = null;
  return load(false);
}

function say(text, kind) {
  const message = $('#message');
  message.textContent = text;
  message.className = kind || '';
}

function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || 'null');
  } catch {
    return null;
  }
}

function b64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).split('+').join('-').split('/').join('_').replace(/=+$/, '');
}

function random(n) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

function claimsOf(jwt) {
  try {
    const part = jwt.split('.')[1].split('-').join('+').split('_').join('/');
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch {
    return {};
  }
}

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error('HTTP ' + response.status + ' from ' + url);
  return response.json();
}

/** OpenID Connect / SMART: redirect to the authorization endpoint with a PKCE challenge. */
async function signIn(launch) {
  let endpoints;
  let aud;
  if (launch && launch.iss) {
    if (launch.iss.replace(/\/+$/, '') !== settings.fhirBase)
      throw new Error('Unknown iss: this app launches only from ' + settings.fhirBase);
    endpoints = await getJson(launch.iss.replace(/\/+$/, '') + '/.well-known/smart-configuration');
    aud = launch.iss;
  } else {
    if (!settings.issuer) throw new Error('No OpenID issuer is configured (OIDC_ISSUER or DEV_ISSUER)');
    endpoints = await getJson(settings.issuer + '/.well-known/openid-configuration');
  }
  const verifier = random(32);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = random(16);
  const nonce = random(16);
  const redirectUri = location.origin + '/ui';
  let scope = settings.scope;
  if (launch && launch.launch) scope += ' launch';
  else if (launch && launch.iss) scope += ' launch/patient';
  sessionStorage.setItem(
    LOGIN,
    JSON.stringify({
      state,
      verifier,
      nonce,
      redirectUri,
      tokenEndpoint: endpoints.token_endpoint,
      revocationEndpoint: endpoints.revocation_endpoint,
    }),
  );
  const url = new URL(endpoints.authorization_endpoint);
  const params = {
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  };
  if (aud) params.aud = aud;
  if (launch && launch.launch) params.launch = launch.launch;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url.toString());
}

/** Back from the issuer with ?code&state: exchange the code (with the PKCE verifier) for tokens. */
async function finishSignIn(query) {
  const pending = JSON.parse(sessionStorage.getItem(LOGIN) || 'null');
  sessionStorage.removeItem(LOGIN);
  history.replaceState(null, '', '/ui');
  if (query.get('error'))
    throw new Error('Sign-in refused: ' + query.get('error') + ' ' + (query.get('error_description') || ''));
  if (!pending || pending.state !== query.get('state'))
    throw new Error('Sign-in failed: the state does not match; sign in again.');
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: query.get('code'),
    redirect_uri: pending.redirectUri,
    client_id: settings.clientId,
    code_verifier: pending.verifier,
  });
  const response = await fetch(pending.tokenEndpoint, {
    method: 'POST',
    body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.access_token)
    throw new Error('Sign-in failed: ' + (tokens.error_description || tokens.error || 'HTTP ' + response.status));
  const id = tokens.id_token ? claimsOf(tokens.id_token) : {};
  if (tokens.id_token && id.nonce !== pending.nonce)
    throw new Error('Sign-in failed: the ID token nonce does not match.');
  const access = claimsOf(tokens.access_token);
  sessionStorage.removeItem('kc-launched');
  sessionStorage.setItem(
    SESSION,
    JSON.stringify({
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      tokenEndpoint: pending.tokenEndpoint,
      revocationEndpoint: pending.revocationEndpoint,
      name: id.name || access.name || access.sub,
      fhirUser: tokens.fhirUser || id.fhirUser || access.fhirUser,
      patient: tokens.patient,
      expiresAt: Date.now() + 1000 * (tokens.expires_in || 3600),
    }),
  );
}

/**
 * A fresh access token from the refresh token (when the issuer gave one), so a clinician is not sent back to sign in
 * every hour of a shift. One refresh at a time: calls made meanwhile wait for it. False when there is none or the
 * issuer refused it (the session is dropped: sign in again).
 */
let refreshing = null;
function refreshSession() {
  if (!refreshing)
    refreshing = exchangeRefreshToken().finally(() => {
      refreshing = null;
    });
  return refreshing;
}

async function exchangeRefreshToken() {
  const current = session();
  if (!current || !current.refreshToken || !current.tokenEndpoint) return false;
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: current.refreshToken,
    client_id: settings.clientId,
  });
  const response = await fetch(current.tokenEndpoint, {
    method: 'POST',
    body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  }).catch(() => undefined);
  const tokens = response ? await response.json().catch(() => ({})) : {};
  if (!response || !response.ok || !tokens.access_token) {
    sessionStorage.removeItem(SESSION);
    return false;
  }
  sessionStorage.setItem(
    SESSION,
    JSON.stringify({
      ...current,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token || current.refreshToken,
      expiresAt: Date.now() + 1000 * (tokens.expires_in || 3600),
    }),
  );
  return true;
}

/**
 * Signing out forgets the session here and, when the issuer has a revocation endpoint (RFC 7009), revokes its refresh
 * token (no new access token from it) and its access token (refused wherever the API asks the issuer about it). A
 * revocation that does not answer within 3 s is not waited for: the session is forgotten all the same.
 */
async function signOut() {
  const current = session();
  sessionStorage.removeItem(SESSION);
  if (current && current.revocationEndpoint) {
    const revoke = (token, hint) =>
      token
        ? fetch(current.revocationEndpoint, {
            method: 'POST',
            body: new URLSearchParams({ token, token_type_hint: hint, client_id: settings.clientId }),
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            signal: AbortSignal.timeout(3000),
          }).catch(() => undefined)
        : undefined;
    await Promise.all([revoke(current.refreshToken, 'refresh_token'), revoke(current.accessToken, 'access_token')]);
  }
  showSignedOut('Signed out.');
}

function showSignedOut(text, kind) {
  $('#app').hidden = true;
  $('#worklist').hidden = true;
  $('#sign-out').hidden = true;
  $('#sign-in').hidden = false;
  $('#who').textContent = '';
  $('#who').title = '';
  say(text || 'Sign in to see the worklist.', kind);
}

/** A call to the API with the session's token: refreshed first when about to expire, and once more on a 401. */
async function api(path, options, retried) {
  let current = session();
  if (current && current.refreshToken && current.expiresAt - 30000 < Date.now() && (await refreshSession()))
    current = session();
  const response = await fetch(path, {
    ...options,
    headers: {
      'content-type': 'application/json',
      authorization: 'Bearer ' + (current ? current.accessToken : ''),
      ...(options && options.headers),
    },
  });
  if (response.status === 401 && !retried && current && current.refreshToken && (await refreshSession()))
    return api(path, options, true);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const text =
      (body.issue && body.issue[0] && body.issue[0].details && body.issue[0].details.text) || 'HTTP ' + response.status;
    const error = new Error(text);
    error.status = response.status;
    error.issue = body.issue && body.issue[0];
    // Issues after the first: each about one thing the refusal names (the EHR's orders of a duplicate).
    error.related = (body.issue || []).slice(1);
    throw error;
  }
  return body;
}

// The clinic's calendar, whoever's browser shows it: an instant's day and time in the clinic's zone, and the instant a
// clinic day starts (its midnight there, found from the zone's offset, which summer time moves).
let clinicFormat = null;
function clinicParts(at) {
  const timeZone = (settings && settings.timeZone) || 'UTC';
  if (!clinicFormat || clinicFormat.resolvedOptions().timeZone !== timeZone)
    clinicFormat = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  return Object.fromEntries(clinicFormat.formatToParts(new Date(at)).map((p) => [p.type, p.value]));
}
// A FHIR date alone (a score taken "2026-11-10") is a calendar day already: shown as written, not moved to a zone.
const DATE_ONLY = /^\d{4}(-\d{2}(-\d{2})?)?$/;
function day(iso) {
  if (!iso) return '';
  if (DATE_ONLY.test(iso)) return iso;
  const p = clinicParts(Date.parse(iso));
  return p.year + '-' + p.month + '-' + p.day;
}
function minute(iso) {
  if (!iso) return '';
  if (DATE_ONLY.test(iso)) return iso;
  const p = clinicParts(Date.parse(iso));
  return day(iso) + ' ' + p.hour + ':' + p.minute;
}
function zoneOffsetAt(at) {
  const p = clinicParts(at);
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(at / 1000) * 1000;
}
function dayStart(date) {
  const utcMidnight = Date.parse(date + 'T00:00:00.000Z');
  const first = utcMidnight - zoneOffsetAt(utcMidnight);
  const start = utcMidnight - zoneOffsetAt(first);
  // Where the clocks jump at midnight (Santiago in September), that midnight does not exist: the day starts at its
  // first instant, the jump, not an hour before it on the day before.
  return day(new Date(start).toISOString()) === date ? start : first;
}
function atMidnight(iso) {
  const p = clinicParts(Date.parse(iso));
  return p.hour === '00' && p.minute === '00';
}
// The last day a window's end closes: the day before it when it ends at the clinic's midnight (a window of whole days
// ends at the midnight after its last day), else the end's own day.
function lastDay(iso) {
  if (!iso) return '';
  return atMidnight(iso) ? day(new Date(Date.parse(iso) - 1).toISOString()) : day(iso);
}
// A due window as a clinician reads it: whole days as days ("2027-03-02 to 2027-03-14", one day alone), else from
// minute to minute. Its parts, each kept on one line.
function windowParts(due) {
  if (!due || !due.start || !due.end) return [];
  if (!atMidnight(due.start) || !atMidnight(due.end)) return [minute(due.start), ' .. ', minute(due.end)];
  const first = day(due.start);
  const last = lastDay(due.end);
  return first === last ? [first] : [first, ' to ', last];
}
function nextDay(date) {
  return new Date(Date.parse(date + 'T00:00:00.000Z') + 86400000).toISOString().slice(0, 10);
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function button(text, label, onClick) {
  const b = el('button', text);
  b.type = 'button';
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

// The latest scores, each with its day kept on one line (a narrow column broke it at its hyphens); "None recorded".
function showScores(node, scores) {
  if (!scores || !scores.length) {
    node.textContent = 'None recorded';
    return;
  }
  node.textContent = '';
  scores.forEach((s, i) => {
    const value = s.label + ' ' + s.value + (s.unit && s.unit !== '{score}' ? ' ' + s.unit : '') + ' ';
    node.append(i ? '; ' + value : value, el('span', '(' + day(s.date) + ')', 'nowrap'));
  });
}

// The effects reported at the latest check: highlighted when there were any (the clinician approving the next
// infusion should see them), quiet when the patient reported none.
function effectsNote(effects) {
  return el(
    'div',
    'Effects reported ' + day(effects.date) + ': ' + effects.reported.join(', '),
    effects.any ? 'badge notice effects' : 'muted effects',
  );
}

// The filters' days as the API's bounds, in the clinic: "Due from" a day is due-after (windows ending at or after it)
// just past its midnight, so a window that ended at that midnight (the day before's) is not listed; "Due until" a
// day is due-before (windows starting at or before it) at its last instant, so the whole day is.
const DAY_BOUNDS = {
  'due-after': (date) => dayStart(date) + 1,
  'due-before': (date) => dayStart(nextDay(date)) - 1,
};

function filterQuery() {
  const params = new URLSearchParams();
  for (const id of ['protocol', 'kind', 'owner', 'due-after', 'due-before', 'overdue', 'name']) {
    const value = $('#f-' + id).value.trim();
    if (value) params.set(id, id in DAY_BOUNDS ? new Date(DAY_BOUNDS[id](value)).toISOString() : value);
  }
  params.set('count', '50');
  return params;
}

// The kinds of Task the protocols generate, named as their CodeSystem names them (/ui/config).
function loadKinds() {
  const select = $('#f-kind');
  for (const kind of settings.taskKinds || []) {
    const option = el('option', kind.display);
    option.value = kind.code;
    select.append(option);
  }
}

async function loadProtocols() {
  const protocols = await api('/protocols');
  const select = $('#f-protocol');
  for (const p of protocols) {
    if (p.status !== 'available') continue;
    const option = el('option', p.title || p.id);
    option.value = p.id;
    select.append(option);
  }
}

async function load(append) {
  try {
    const query = filterQuery().toString();
    // The owners' line with the list, so the table, the line and the message change together.
    const [list, owners] = await Promise.all([
      api(append && nextLink ? nextLink : '/' + currentList + '/view?' + query),
      currentList === 'to-do' ? api('/to-do/owners') : null,
    ]);
    const body = $('#worklist tbody');
    if (!append) {
      body.replaceChildren();
      items = new Map();
    }
    for (const item of list.items) {
      items.set(item.id, item);
      body.append(row(item));
    }
    nextLink = list.next || null;
    $('#worklist').dataset.query = query;
    $('#more').hidden = !nextLink;
    $('#app').hidden = false;
    $('#worklist').hidden = false;
    $('#select-all').checked = false;
    updateBulk();
    showOwners(owners);
    const shown = LISTS[currentList].counted(list.total !== undefined ? list.total : items.size);
    if (list.morePatients)
      say(
        shown +
          ' for the first ' +
          list.patientsMatched +
          ' patients matching the name: type more of it to narrow the search',
        'ok',
      );
    else say(shown, 'ok');
  } catch (error) {
    if (error.status === 401) {
      sessionStorage.removeItem(SESSION);
      showSignedOut('Your token is missing, invalid or expired. Sign in again.', 'error');
    } else say(error.message, 'error');
  }
}

// On the to-do list: who has taken how many of its Tasks, and how many nobody has yet (the whole list, unfiltered).
function showOwners(answer) {
  const line = $('#owners');
  line.hidden = !answer;
  if (!answer) return;
  const owners = answer.owners;
  const taken = owners.filter((o) => o.owner).map((o) => (o.display || 'a colleague') + ' ' + o.count);
  const nobody = owners.find((o) => !o.owner);
  line.textContent =
    'Taken: ' + (taken.length ? taken.join(', ') : 'none') + ". Nobody's yet: " + (nobody ? nobody.count : 0) + '.';
}

function row(item) {
  const view = item.view || {};
  const patient = view.patient || {};
  const name = patient.name || item.patient || 'Unknown patient';
  const description = item.description || item.kind || '';
  const label = view.task && view.task.label;
  // The kind before what the protocol calls it, unless that says it already ("Post-infusion check within one week").
  const what =
    label && !description.toLowerCase().startsWith(label.toLowerCase()) ? label + ': ' + description : description;
  const tr = document.createElement('tr');
  tr.dataset.taskId = item.id;
  if (item.overdue) tr.classList.add('is-overdue');

  const select = document.createElement('td');
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.className = 'select';
  box.setAttribute('aria-label', 'Select ' + what + ' for ' + name);
  box.addEventListener('change', updateBulk);
  // Its plan was stopped or paused: approving is refused, so it cannot be chosen for it.
  // Approved and then held for a contraindication: it can be overridden (its contraindication) or rejected, not approved.
  const held = Boolean(item.onHold);
  // An unresolved contraindication on the plan: the server would refuse; the way on is its Override (or Reject).
  const contraindicated = (view.contraindications || []).some((i) => i.state === 'unresolved');
  const approvable = !view.blocked && !held && !contraindicated;
  // On the to-do list a Task is approved already; it can still be rescheduled, rejected or, a check, recorded.
  const toDo = currentList === 'to-do';
  // Due outside its protocol window: approved alone, with its reason (the bulk approval would be refused for it).
  if (!approvable || toDo || view.windowNotice) box.disabled = true;
  if (!toDo) select.append(box);

  const who = document.createElement('td');
  const open = button(name, 'Open patient view of ' + name, () => showPatient(item.patient));
  open.className = 'link patient-link';
  who.append(open, el('div', patient.age !== undefined ? patient.age + ' years' : 'age unknown', 'muted age'));
  // Merged into another record in the EHR: the plan stays under this one, which the EHR's chart no longer shows.
  if (patient.mergedInto)
    who.append(
      el(
        'div',
        'Record merged in the EHR' + (patient.mergedIntoName ? ' (now ' + patient.mergedIntoName + ')' : ''),
        'badge notice merged',
      ),
    );

  const protocol = document.createElement('td');
  const phase = view.protocol ? view.protocol.phase : '';
  protocol.append(el('div', view.protocol ? view.protocol.title : item.protocol || ''));
  if (phase) protocol.append(el('span', phase, 'badge phase ' + phase));

  const due = el('td', '', 'due');
  const dueWindow = el('div', '', item.overdue ? 'overdue' : '');
  for (const part of windowParts(item.due)) dueWindow.append(part.trim() ? el('span', part, 'nowrap') : part);
  due.append(dueWindow);
  if (item.overdue) due.append(el('span', 'Overdue', 'badge overdue'));

  const ci = document.createElement('td');
  ci.className = 'contraindications';
  const issues = view.contraindications || [];
  if (!issues.length) ci.append(el('span', 'None on record', 'muted'));
  else {
    const list = el('ul', undefined, 'plain');
    for (const issue of issues) {
      // "Pregnancy on record (...): unresolved", not "...). (unresolved)": the text may end a sentence.
      // An infusion in error is resolved (planned again, or put right by hand), not overridden.
      const state = issue.kind === 'infusion-in-error' && issue.state === 'overridden' ? 'resolved' : issue.state;
      const li = el('li', issue.text.replace(/\.$/, '') + ': ' + state, 'ci-' + issue.state);
      if (issue.evidence && issue.evidence.length) li.title = issue.evidence.join('; ');
      if (issue.holds && issue.holds.length)
        li.append(el('div', 'Holds ' + counted(issue.holds.length, 'approved order'), 'badge blocked'));
      if (issue.state === 'unresolved')
        li.append(
          overrideButton(issue, name, [{ reference: item.carePlan, title: view.protocol && view.protocol.title }]),
        );
      list.append(li);
    }
    ci.append(list);
  }

  const scores = el('td', undefined, view.scores && view.scores.length ? 'scores' : 'scores muted');
  showScores(scores, view.scores);
  if (view.effects) scores.append(effectsNote(view.effects));

  const actions = document.createElement('td');
  // A check is done by asking its questions: recording the answers completes it (approved or not). On the to-do
  // list that is what the row is for, so it comes first.
  const recordCheck =
    view.task && view.task.answers
      ? button('Record check', 'Record check: ' + view.task.answers + ' for ' + name, () =>
          askCheck({ id: item.id, versionId: item.versionId, what: describe(item) }),
        )
      : null;
  if (recordCheck && toDo) actions.append(recordCheck);
  // An infusion titrated per kg is approved at a rate the clinician confirms or changes (its dialog); others at once.
  // Due outside its protocol window: approved there only with the clinician's reason (asked first), else as usual.
  const approve = view.windowNotice
    ? () => askOutsideWindow(item)
    : view.dose
      ? () => askApprove(item)
      : () => decide(item, 'approve');
  if (approvable && !toDo) actions.append(button('Approve', 'Approve ' + what + ' for ' + name, approve));
  actions.append(button('Reject', 'Reject ' + what + ' for ' + name, () => askReject(item)));
  if (approvable && item.allowedWindow && item.allowedWindow.start && item.allowedWindow.end)
    actions.append(button('Reschedule', 'Reschedule ' + what + ' for ' + name, () => askReschedule(item)));
  if (recordCheck && !toDo) actions.append(recordCheck);
  // An approved infusion not given yet: its order can be replaced at another dose (not while held, nor while its plan
  // is stopped or paused: the server refuses).
  if (toDo && view.dose && !held && !view.blocked)
    actions.append(button('Change dose', 'Change dose of ' + what + ' for ' + name, () => askChangeDose(item)));
  // Who is to do it (Task.owner): a clinician takes a Task or gives it back; on the to-do list that is the point.
  const mine = Boolean(item.owner && item.owner.reference && item.owner.reference === (session() || {}).fhirUser);
  if (mine) actions.append(button('Give back', 'Give back ' + what + ' for ' + name, () => decide(item, 'unassign')));
  else if (toDo || item.owner)
    actions.append(button('Take', 'Take ' + what + ' for ' + name, () => decide(item, 'assign')));

  const task = el('td', what, 'task');
  if (item.reason) task.append(el('div', 'Why: ' + item.reason, 'muted reason'));
  if (view.dose && !toDo) {
    task.append(doseLine(view.dose, 'muted dose'));
    // Why this rate, when it is the one the pump gave last session (lowered or raised from the order).
    if (view.dose.lastGiven) task.append(el('div', view.dose.lastGiven, 'muted last-given'));
  }
  // The weight the mg/h is computed from is older than the protocol wants: weigh the patient first (approved or not).
  if (view.dose && view.dose.weightNotice) task.append(el('div', view.dose.weightNotice, 'badge notice weight-notice'));
  // On the to-do list, what the nurse gives: the order's rate as prescribed and for this patient.
  if (view.orderedDose && toDo) task.append(el('div', 'Ordered at ' + view.orderedDose, 'muted dose'));
  // Its order as the EHR has it now, when not simply the one approved here: replaced there, held there, or closed.
  if (view.orderStatus && toDo) task.append(el('div', view.orderStatus, 'badge notice order-status'));
  // Approved under a plan now paused: its order is held until the plan resumes (a stopped plan's are withdrawn).
  if (view.blocked)
    task.append(el('div', (toDo ? 'Not to be given now: ' : 'Cannot be approved: ') + view.blocked, 'badge blocked'));
  // A post-infusion check under a plan closed since: still due (the infusion was given), so the clinician knows why.
  if (view.planClosed) task.append(el('div', view.planClosed, 'badge notice plan-closed'));
  // Approvable, but a reminder would reach the patient late (the fasting one, with the window about to open).
  if (view.reminderNotice && approvable) task.append(el('div', view.reminderNotice, 'badge notice reminder-notice'));
  // Approvable, but the EHR has an open order of its drug: for its time, or with no time set.
  if (view.ehrOrders && approvable) task.append(el('div', view.ehrOrders, 'badge notice ehr-orders'));
  if (toDo)
    task.append(
      el(
        'div',
        (item.businessStatus === 'rescheduled' ? 'Approved, rescheduled' : 'Approved') +
          (EHR_STATUS[item.ehrStatus] ? ', ' + EHR_STATUS[item.ehrStatus] : ''),
        'muted approved',
      ),
    );
  // Moved in the EHR to a window its protocol does not allow (nothing here sets one): the clinician is to know.
  if (view.windowNotice) task.append(el('div', view.windowNotice, 'badge notice window-notice'));
  // Its appointment was cancelled in the scheduling system (at no time now, its reminders revoked), or, awaiting a
  // decision again, its order was closed in the EHR.
  if (item.attention) task.append(el('div', item.attention, 'badge notice attention'));
  if (item.owner)
    task.append(
      el(
        'div',
        mine ? 'Yours' : 'Taken by ' + (item.owner.display || 'a colleague'),
        'badge owner' + (mine ? ' mine' : ''),
      ),
    );
  else if (toDo) task.append(el('div', 'Nobody has taken it yet', 'muted owner'));
  // The hold's reason starts "Held: ..." (as an EHR reads it on the order); the badge already says so.
  if (held)
    task.append(el('div', 'Approved, now on hold: ' + item.onHold.replace(/^Held: /, ''), 'badge blocked on-hold'));
  else if (contraindicated && !view.blocked)
    task.append(el('div', waitingFor(view.contraindications), 'badge blocked'));

  tr.append(select, who, protocol, task, due, ci, scores, actions);
  return tr;
}

function selected() {
  return [...document.querySelectorAll('#worklist tbody input.select:checked')].map(
    (box) => box.closest('tr').dataset.taskId,
  );
}

function updateBulk() {
  const n = selected().length;
  $('#bulk-approve').disabled = n === 0;
  $('#bulk-approve').textContent = n ? 'Approve selected (' + n + ')' : 'Approve selected';
}

function describe(item) {
  const view = item.view || {};
  return (
    (item.description || item.kind || item.id) + (view.patient && view.patient.name ? ' for ' + view.patient.name : '')
  );
}

async function afterDecision(text, kind) {
  await load(false);
  say(text, kind);
}

async function decide(item, decision, extra) {
  const body = { versionId: item.versionId, ...(extra || {}) };
  try {
    await api('/tasks/' + encodeURIComponent(item.id) + '/$' + decision, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    // Taking a Task (assign: Task.owner the caller) or giving it back is sent and answered as a decision is.
    const verb = {
      approve: 'Approved: ',
      reject: 'Rejected: ',
      reschedule: 'Rescheduled: ',
      assign: 'Taken: ',
      unassign: 'Given back: ',
      'change-dose': 'Dose changed: ',
    }[decision];
    await afterDecision(verb + describe(item), 'ok');
    return true;
  } catch (error) {
    // The EHR has ordered this session already: the clinician chooses its order, both, or neither.
    if (error.status === 409 && error.issue && error.issue.code === 'duplicate' && decision === 'approve') {
      askOrderedAlready(item, error.message, ordersNamed(error.related, error.issue.expression), extra);
      return false;
    }
    // Another of the patient's plans has a session approved for these days: approved beside it only if both are meant.
    // A reschedule into such days likewise: rescheduled there beside it only if both are meant.
    const otherPlans = error.status === 409 && namesOtherPlansSessions(error.issue, error.related);
    if (otherPlans && (decision === 'approve' || decision === 'reschedule')) {
      const orders = ordersNamed(error.related, error.issue.expression, 'conflict');
      askOrderedAlready(item, error.message, orders, extra, false, decision);
      return false;
    }
    if (error.status === 409 || error.status === 412) {
      await afterDecision(
        'Someone else changed this task first: ' + error.message + ' The list has been reloaded.',
        'error',
      );
    } else if (error.status === 422) {
      // Refused for the patient's sake (a contraindication, perhaps found just now and recorded): show it on the row.
      await afterDecision(error.message, 'error');
    } else say(error.message, 'error');
    return false;
  }
}

// A titrated infusion's dose in words: the rate per kg and, with a weight on record, about what it gives in mg/h (the
// server computes the order's own, from the latest weight, when the clinician approves).
function rounded(value) {
  return Math.round(value * 10) / 10;
}
function doseText(dose, ratePerKg) {
  const rate = ratePerKg + ' ' + dose.unit;
  if (dose.weightKg === undefined) return 'Dose ' + rate + ': no body weight on record';
  return (
    'Dose ' +
    rate +
    ', about ' +
    rounded(ratePerKg * dose.weightKg) +
    ' ' +
    dose.unit.replace('/kg', '') +
    ' for ' +
    dose.weightKg +
    ' kg (weighed ' +
    day(dose.weighed) +
    ')'
  );
}

// A row's dose: its weighing date kept on one line (a narrow column broke it at its hyphens).
function doseLine(dose, className) {
  const text = doseText(dose, dose.ratePerKg);
  const node = el('div', undefined, className);
  const weighed = text.lastIndexOf(' (weighed ');
  if (weighed < 0) node.textContent = text;
  else node.append(text.slice(0, weighed + 1), el('span', text.slice(weighed + 1), 'nowrap'));
  return node;
}

// A rate-per-kg field of a dialog (#<name>-rate, its label #<name>-rate-label, its dose #<name>-dose): set up for a
// dose (the proposal's rate, the range in the label), its dose shown as the rate is typed, and the rate chosen.
function showRateField(name, dose) {
  const input = $('#' + name + '-rate');
  $('#' + name + '-rate-label').textContent =
    'Rate per kg (' + dose.unit + '; the protocol allows ' + dose.low + ' to ' + dose.high + ')';
  input.min = String(dose.low);
  input.max = String(dose.high);
  input.value = String(dose.ratePerKg);
  input.removeAttribute('aria-invalid');
  showRateDose(name, dose);
}
function showRateDose(name, dose) {
  const input = $('#' + name + '-rate');
  const value = Number(input.value);
  $('#' + name + '-dose').textContent = dose && input.value && Number.isFinite(value) ? doseText(dose, value) : '';
}
// The rate to send ({value, unit}), or null: a rate outside the range is refused on the page, said in #<error>.
function chosenRate(name, dose, error) {
  const input = $('#' + name + '-rate');
  const value = Number(input.value);
  if (input.value && Number.isFinite(value) && value >= dose.low && value <= dose.high)
    return { value, unit: dose.unit };
  input.setAttribute('aria-invalid', 'true');
  $('#' + error).textContent = 'Choose a rate from ' + dose.low + ' to ' + dose.high + ' ' + dose.unit + '.';
  input.focus();
  return null;
}

// The optional bolus at the infusion's start of a dialog (#<name>-bolus, its block, label and dose), shown when the
// protocol allows one: empty by default (none is proposed; a dose change starts from its order's), its dose shown as
// it is typed, and one above the protocol's ceiling refused on the page.
function showBolusField(name, dose, value) {
  $('#' + name + '-bolus-block').hidden = !dose.bolus;
  if (!dose.bolus) return;
  const input = $('#' + name + '-bolus');
  $('#' + name + '-bolus-label').textContent =
    'Bolus at the start, per kg (optional; ' + dose.bolus.unit + ', the protocol allows up to ' + dose.bolus.high + ')';
  input.max = String(dose.bolus.high);
  input.value = value === undefined ? '' : String(value);
  input.removeAttribute('aria-invalid');
  showBolusDose(name, dose);
}
function showBolusDose(name, dose) {
  const input = $('#' + name + '-bolus');
  const value = Number(input.value);
  const unit = dose && dose.bolus && dose.bolus.unit;
  let text = '';
  if (unit && input.value && Number.isFinite(value))
    text =
      dose.weightKg === undefined
        ? 'Bolus ' + value + ' ' + unit + ': no body weight on record'
        : 'Bolus ' +
          value +
          ' ' +
          unit +
          ', about ' +
          rounded(value * dose.weightKg) +
          ' ' +
          unit.replace('/kg', '') +
          ' for ' +
          dose.weightKg +
          ' kg, at the start of the infusion';
  $('#' + name + '-bolus-dose').textContent = text;
}
// The bolus to send ({value, unit}); undefined: none asked; null: refused on the page, said in #<error>.
function chosenBolus(name, dose, error) {
  const input = $('#' + name + '-bolus');
  if (!dose.bolus || !input.value.trim()) return undefined;
  const value = Number(input.value);
  const low = dose.bolus.low === undefined ? 0 : dose.bolus.low;
  if (Number.isFinite(value) && value > 0 && value >= low && value <= dose.bolus.high)
    return { value, unit: dose.bolus.unit };
  input.setAttribute('aria-invalid', 'true');
  $('#' + error).textContent =
    'Choose a bolus up to ' + dose.bolus.high + ' ' + dose.bolus.unit + ', or leave it empty.';
  input.focus();
  return null;
}
// A new rate typed in a dialog: the last refusal no longer applies, and what it gives is shown.
function onRateInput(name, error, current) {
  $('#' + name + '-rate').addEventListener('input', () => {
    $('#' + name + '-rate').removeAttribute('aria-invalid');
    $('#' + error).textContent = '';
    showRateDose(name, current().view.dose);
  });
}
// The dose a dialog asks for ({rate, bolus?}), or null when the page refused it (said in #<error>).
function chosenDose(name, dose, error) {
  const rate = chosenRate(name, dose, error);
  if (!rate) return null;
  const bolus = chosenBolus(name, dose, error);
  if (bolus === null) return null;
  return bolus ? { rate, bolus } : { rate };
}
function onBolusInput(name, error, current) {
  $('#' + name + '-bolus').addEventListener('input', () => {
    $('#' + name + '-bolus').removeAttribute('aria-invalid');
    $('#' + error).textContent = '';
    const item = current();
    showBolusDose(name, item && item.view && item.view.dose);
  });
}

let approving = null;
// What the approval carries besides its dose (the reason for approving outside the protocol window).
let approvingWith = {};
function askApprove(item, extra) {
  approving = item;
  approvingWith = extra || {};
  $('#approve-what').textContent = describe(item);
  $('#approve-error').textContent = '';
  showRateField('approve', item.view.dose);
  $('#approve-last-given').textContent = item.view.dose.lastGiven || '';
  $('#approve-weight-notice').textContent = item.view.dose.weightNotice || '';
  showBolusField('approve', item.view.dose);
  $('#approve-dialog').showModal();
  $('#approve-rate').focus();
}
onRateInput('approve', 'approve-error', () => approving);
onBolusInput('approve', 'approve-error', () => approving);
$('#approve-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const item = approving;
  const dose = chosenDose('approve', item.view.dose, 'approve-error');
  if (!dose) return;
  $('#approve-dialog').close();
  await decide(item, 'approve', { ...approvingWith, ...dose });
});
$('#approve-cancel').addEventListener('click', () => $('#approve-dialog').close());

// The EHR's orders a duplicate refusal names, each with its words ({reference, text}): from the issues after the first,
// else by reference alone.
function ordersNamed(related, references, code) {
  const named = (related || [])
    .filter((r) => r.code === (code || 'duplicate') && r.expression && r.expression.length)
    .map((r) => ({ reference: r.expression[0], text: (r.details && r.details.text) || r.expression[0] }));
  return named.length ? named : (references || []).map((reference) => ({ reference, text: reference }));
}

// A refusal because another of the patient's care plans has a session approved for these days (409 `conflict`, each
// related issue naming that session's order and its Task), not another conflict (a closed Task, a stopped plan).
function namesOtherPlansSessions(issue, related) {
  return Boolean(
    issue &&
    issue.code === 'conflict' &&
    (related || []).some((r) => r.code === 'conflict' && (r.expression || []).some((e) => e.startsWith('Task/'))),
  );
}
// The same in a bulk approval's result (its first issue's code and expression: the orders).
function namesOrders(result) {
  const refs = result.expression || [];
  return result.code === 'conflict' && refs.length > 0 && refs.every((e) => e.startsWith('MedicationRequest/'));
}

// Approving a session the EHR has already ordered for its time (refused as a duplicate): approve it on the EHR's order
// (no order written here; its dose is the EHR's), or alongside it (both orders meant), or not at all.
// `ehr` false: another of the patient's care plans ordered it (its own session), so only "beside it" is offered; the
// `decision` refused so (an approval, or a reschedule into that session's days) is the one sent again beside it.
function askOrderedAlready(item, text, orders, extra, ehr = true, decision = 'approve') {
  $('#ordered-title').textContent = ehr ? 'Already ordered in the EHR' : 'Already approved under another care plan';
  $('#ordered-what').textContent = describe(item);
  $('#ordered-text').textContent = text;
  const choices = $('#ordered-choices');
  choices.replaceChildren();
  const choose = (body) => async () => {
    $('#ordered-dialog').close();
    await decide(item, decision, body);
    askNextOrdered();
  };
  // One order: named in the text above; several: each in its words.
  for (const order of ehr ? orders : [])
    choices.append(
      button(
        orders.length === 1 ? 'Approve on the EHR’s order (it is this session’s)' : 'Approve on: ' + order.text,
        orders.length === 1 ? 'Approve on the EHR’s order (it is this session’s): ' + order.text : undefined,
        choose({ onOrder: order.reference, ...outsideWindowOf(extra) }),
      ),
    );
  // Beside them, and beside any the clinician already chose to stand beside (a refusal for each kind in turn).
  const beside = [...((extra && extra.alongside) || []), ...orders.map((order) => order.reference)];
  const rescheduling = decision === 'reschedule';
  const asWell = rescheduling ? 'Reschedule it there as well' : 'Approve and order it here as well';
  choices.append(
    button(
      asWell,
      asWell + (ehr ? ', alongside the EHR’s order' : ', beside the other care plan’s session'),
      choose({ ...(extra || {}), alongside: beside }),
    ),
  );
  $('#ordered-dialog').showModal();
}
$('#ordered-cancel').addEventListener('click', () => {
  $('#ordered-dialog').close();
  askNextOrdered();
});

// Sessions a bulk approval refused because the EHR has ordered them already: asked about one after another.
let orderedAfterBulk = [];
function askNextOrdered() {
  if ($('#ordered-dialog').open) return;
  const next = orderedAfterBulk.shift();
  if (next) askOrderedAlready(next.item, next.message, next.orders, undefined, next.ehr);
}

// Change dose (the to-do list): the order's rate and bolus to start from, what they give at today's weight as typed.
let changing = null;
function askChangeDose(item) {
  changing = item;
  const dose = item.view.dose;
  $('#change-what').textContent = describe(item);
  $('#change-current').textContent = item.view.orderedDose ? 'Ordered now at ' + item.view.orderedDose : '';
  $('#change-error').textContent = '';
  $('#change-reason').value = '';
  showRateField('change', dose);
  showBolusField('change', dose, dose.bolusPerKg);
  $('#change-dialog').showModal();
  $('#change-rate').focus();
}
onRateInput('change', 'change-error', () => changing);
onBolusInput('change', 'change-error', () => changing);
$('#change-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const item = changing;
  const dose = chosenDose('change', item.view.dose, 'change-error');
  if (!dose) return;
  const reason = $('#change-reason').value.trim();
  $('#change-dialog').close();
  await decide(item, 'change-dose', { ...dose, ...(reason ? { reason } : {}) });
});
$('#change-cancel').addEventListener('click', () => $('#change-dialog').close());

let rejecting = null;
// The reject and override dialogs (#<name>-dialog, -reason, -error): opened empty; an empty reason is refused on the
// page, with the message, and nothing is sent.
function openReasonDialog(name) {
  $('#' + name + '-reason').value = '';
  $('#' + name + '-reason').removeAttribute('aria-invalid');
  $('#' + name + '-error').textContent = '';
  $('#' + name + '-dialog').showModal();
  $('#' + name + '-reason').focus();
}
function requiredReason(name, message) {
  const reason = $('#' + name + '-reason').value.trim();
  if (reason) {
    $('#' + name + '-dialog').close();
    return reason;
  }
  $('#' + name + '-reason').setAttribute('aria-invalid', 'true');
  $('#' + name + '-error').textContent = message;
  $('#' + name + '-reason').focus();
  return undefined;
}

// A Task due outside its protocol window: the clinician says why it is approved there, then approves as usual (an
// infusion's dose dialog next). Rescheduling it within the window needs no reason.
let approvingOutside = null;
function askOutsideWindow(item) {
  approvingOutside = item;
  $('#outside-what').textContent = describe(item);
  $('#outside-notice').textContent =
    item.view.windowNotice + '. Approving keeps it due then; reschedule it instead to keep to the protocol.';
  openReasonDialog('outside');
}
$('#outside-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const reason = requiredReason('outside', 'A reason is required to approve a task outside its protocol window.');
  if (!reason) return;
  const item = approvingOutside;
  if (item.view.dose) askApprove(item, { outsideWindowReason: reason });
  else await decide(item, 'approve', { outsideWindowReason: reason });
});
$('#outside-cancel').addEventListener('click', () => $('#outside-dialog').close());
function outsideWindowOf(extra) {
  return extra && extra.outsideWindowReason ? { outsideWindowReason: extra.outsideWindowReason } : {};
}

function askReject(item) {
  rejecting = item;
  $('#reject-what').textContent = describe(item);
  openReasonDialog('reject');
}
$('#reject-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const reason = requiredReason('reject', 'A reason is required to reject a task.');
  if (reason) await decide(rejecting, 'reject', { reason });
});
$('#reject-cancel').addEventListener('click', () => $('#reject-dialog').close());

// What an unapprovable row waits for: a contraindication's override, or a clinician's review of a reported effect.
function waitingFor(issues) {
  const open = issues.filter((i) => i.state === 'unresolved');
  const contraindication = open.some((i) => i.kind === 'contraindication');
  const effect = open.some((i) => i.kind === 'reported-effect');
  const unread = open.some((i) => i.kind === 'unread-answers');
  const inError = open.some((i) => i.kind === 'infusion-in-error');
  const notLinked = open.some((i) => i.kind === 'infusion-not-linked');
  return (
    'Cannot be approved until ' +
    [
      contraindication ? 'its contraindication is overridden' : '',
      effect ? 'a clinician reviews the effect reported' : '',
      unread ? "a clinician reads the check's answers" : '',
      inError ? 'the plan is put right after the infusion recorded in error' : '',
      notLinked ? 'the infusion charted without its care plan is linked, or recorded as not a session' : '',
    ]
      .filter(Boolean)
      .join(' and ')
  );
}

// Overriding a contraindication: the clinician's reason, If-Match on the version shown. The orders it held go back to
// active and the actions it held back are proposed (awaiting approval); the worklist and any patient view reload.
let overriding = null;
// An effect reported at a check is overridden the same way, as the clinician's review: what was decided, and why.
const OVERRIDE_WORDS = {
  contraindication: {
    button: 'Override',
    title: 'Override contraindication',
    confirm: 'Override and proceed',
    label: 'Clinical reason (required; recorded with your name)',
    required: 'A clinical reason is required to override a contraindication.',
  },
  'reported-effect': {
    button: 'Review',
    title: 'Review a reported effect',
    confirm: 'Record the review and proceed',
    label: 'What was decided, and why (required; recorded with your name)',
    required: 'Say what was decided: it is recorded with your name.',
  },
  // A check done in the EHR whose answers could not be read here: the clinician reads them there.
  'unread-answers': {
    button: 'Review',
    title: 'Review the answers read in the EHR',
    confirm: 'Record the review and proceed',
    label: 'What the answers say and what was decided (required; recorded with your name)',
    required: 'Say what the answers say and what was decided: it is recorded with your name.',
  },
  // An infusion recorded in error after its follow-ups: planned again without it (replanButton), or put right by hand.
  'infusion-in-error': {
    button: 'Resolve by hand',
    title: 'Resolve an infusion recorded in error by hand',
    confirm: 'Record and proceed',
    label: 'What you put right by hand, and why (required; recorded with your name)',
    required: 'Say what you put right: it is recorded with your name.',
  },
  // An infusion charted naming no care plan: linked to the plan it was a session of (linkButton), or recorded as not
  // one of its sessions (another drug's infusion, say).
  'infusion-not-linked': {
    button: 'Not a session of this plan',
    title: 'Record that the infusion was not a session of the plan:',
    confirm: 'Record and proceed',
    label: 'What the infusion was (required; recorded with your name)',
    required: 'Say what the infusion was: it is recorded with your name.',
  },
};
function overrideWords(issue) {
  return OVERRIDE_WORDS[issue.kind] || OVERRIDE_WORDS.contraindication;
}
// `plans`: the plans the row or the patient view shows the issue on ({ reference, title }), which an infusion charted
// naming none may be linked to.
function overrideButton(issue, name, plans) {
  const words = overrideWords(issue);
  const override = button(words.button, words.button + ': ' + issue.text + ' for ' + name, () =>
    askOverride(issue, name),
  );
  const ways =
    issue.kind === 'infusion-in-error'
      ? [replanButton(issue, name)]
      : issue.kind === 'infusion-not-linked'
        ? (plans || []).filter((plan) => plan.reference).map((plan) => linkButton(issue, name, plan))
        : [];
  if (!ways.length) return override;
  const all = document.createElement('span');
  for (const way of ways) all.append(way, document.createTextNode(' '));
  all.append(override);
  return all;
}

// Linking an infusion charted naming no care plan to the plan it was a session of: one decision (POST
// .../$link-infusion, If-Match on the version shown); it is then followed up and its hold on the plan ends.
let linking = null;
function linkButton(issue, name, plan) {
  const to = plan.title ? plan.title + ' plan' : 'this plan';
  return button('Link to ' + to, 'Link to ' + to + ' of ' + name + ': the infusion charted without its plan', () => {
    linking = { issue, name, plan };
    $('#link-what').textContent =
      (issue.evidence && issue.evidence.length ? issue.evidence.join('; ') : issue.text) + ', for ' + name + '.';
    $('#link-to').textContent = 'Link it to the ' + to + '.';
    openReasonDialog('link');
  });
}
$('#link-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const { issue, name, plan } = linking;
  const reason = $('#link-reason').value.trim();
  $('#link-dialog').close();
  try {
    await api('/detected-issues/' + encodeURIComponent(issue.id) + '/$link-infusion', {
      method: 'POST',
      body: JSON.stringify(
        Object.assign({ versionId: issue.versionId, carePlan: plan.reference }, reason ? { reason } : {}),
      ),
    });
    await afterDecision(
      'For ' +
        name +
        ': the infusion is linked to its plan and followed up' +
        (issue.holds && issue.holds.length ? '; its held orders are active again' : ''),
      'ok',
    );
  } catch (error) {
    await afterIssueRefused(error, 'this infusion');
  }
  if (!$('#patient-view').hidden && shownPatient) await showPatient(shownPatient);
});
$('#link-cancel').addEventListener('click', () => $('#link-dialog').close());

// Planning again without an infusion recorded in error: one decision (POST .../$replan, If-Match on the version shown),
// whose answer's mitigation says what was withdrawn and proposed again; the worklist and any patient view reload.
let replanning = null;
function replanButton(issue, name) {
  return button('Plan again without it', 'Plan again without it: the infusion recorded in error for ' + name, () => {
    replanning = { issue, name };
    $('#replan-what').textContent =
      issue.text +
      ' for ' +
      name +
      (issue.evidence && issue.evidence.length ? ' (' + issue.evidence.join('; ') + ')' : '');
    openReasonDialog('replan');
  });
}
$('#replan-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const { issue, name } = replanning;
  const reason = requiredReason('replan', 'Say why: it is recorded with your name.');
  if (!reason) return;
  try {
    const resolved = await api('/detected-issues/' + encodeURIComponent(issue.id) + '/$replan', {
      method: 'POST',
      body: JSON.stringify({ versionId: issue.versionId, reason }),
    });
    const mitigation = (resolved.mitigation || []).slice(-1)[0];
    const done = mitigation && mitigation.action ? mitigation.action.text.replace(' ' + reason, '') : '';
    await afterDecision('For ' + name + ': ' + done, 'ok');
  } catch (error) {
    await afterIssueRefused(error, 'this plan');
  }
  if (!$('#patient-view').hidden && shownPatient) await showPatient(shownPatient);
});
$('#replan-cancel').addEventListener('click', () => $('#replan-dialog').close());
function askOverride(issue, name) {
  overriding = { issue, name };
  const words = overrideWords(issue);
  $('#override-title').textContent = words.title;
  $('#override-confirm').textContent = words.confirm;
  $('label[for=override-reason]').textContent = words.label;
  $('#override-what').textContent =
    issue.text +
    ' for ' +
    name +
    (issue.evidence && issue.evidence.length ? ' (' + issue.evidence.join('; ') + ')' : '');
  $('#override-holds').textContent =
    issue.holds && issue.holds.length
      ? 'It holds ' + counted(issue.holds.length, 'approved order') + ': overriding releases them.'
      : '';
  openReasonDialog('override');
}
$('#override-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const { issue, name } = overriding;
  const reason = requiredReason('override', overrideWords(issue).required);
  if (!reason) return;
  try {
    await api('/detected-issues/' + encodeURIComponent(issue.id) + '/$override', {
      method: 'POST',
      body: JSON.stringify({ versionId: issue.versionId, reason }),
    });
    await afterDecision(
      (issue.kind === 'contraindication' ? 'Overridden: ' : 'Reviewed: ') +
        issue.text.replace(/\.$/, '') +
        ' for ' +
        name +
        (issue.holds && issue.holds.length ? '; its held orders are active again' : ''),
      'ok',
    );
  } catch (error) {
    await afterIssueRefused(error, 'this contraindication');
  }
  if (!$('#patient-view').hidden && shownPatient) await showPatient(shownPatient);
});
$('#override-cancel').addEventListener('click', () => $('#override-dialog').close());

// A decision on an issue refused: said, and the list reloaded; changed by someone else first (409, 412), said so.
async function afterIssueRefused(error, what) {
  const changed = error.status === 409 || error.status === 412;
  await afterDecision(
    (changed ? 'Someone else changed ' + what + ' first: ' : '') +
      error.message +
      (changed ? ' The list has been reloaded.' : ''),
    'error',
  );
}

let rescheduling = null;
function askReschedule(item) {
  rescheduling = item;
  const allowed = item.allowedWindow;
  $('#reschedule-what').textContent = describe(item);
  $('#reschedule-range').textContent =
    'Allowed by the protocol: ' + day(allowed.start) + ' to ' + lastDay(allowed.end) + ' (' + settings.timeZone + ')';
  for (const id of ['#rs-start', '#rs-end']) {
    const input = $(id);
    input.min = day(allowed.start);
    input.max = lastDay(allowed.end);
    input.removeAttribute('aria-invalid');
  }
  $('#rs-start').value = day(item.due && item.due.start) || day(allowed.start);
  $('#rs-end').value = lastDay(item.due && item.due.end) || lastDay(allowed.end);
  $('#reschedule-error').textContent = '';
  $('#reschedule-notice').hidden = true;
  // An infusion awaiting approval is approved for the new window: at a rate per kg the clinician confirms or changes.
  const dose = currentList !== 'to-do' && item.view && item.view.dose;
  $('#rs-rate-block').hidden = !dose;
  if (dose) {
    showRateField('rs', dose);
    showBolusField('rs', dose);
  }
  $('#reschedule-dialog').showModal();
  $('#rs-start').focus();
  void previewReschedule();
}

// The window the dialog's dates stand for: whole days in the clinic, clipped to the protocol window at its edges.
function chosenWindow(item) {
  const allowed = item.allowedWindow;
  const start = $('#rs-start').value;
  const end = $('#rs-end').value;
  if (!start || !end || start > end) return null;
  const from = start === day(allowed.start) ? Date.parse(allowed.start) : dayStart(start);
  const to = end === lastDay(allowed.end) ? Date.parse(allowed.end) : dayStart(nextDay(end));
  return { start: new Date(from).toISOString(), end: new Date(to).toISOString() };
}

// Whether the chosen dates would send a reminder too late (the fasting one, for a session within hours): the
// server's preview, shown in the dialog as the dates change. A failed preview shows nothing: the reschedule still works.
async function previewReschedule() {
  const item = rescheduling;
  const chosen = item && chosenWindow(item);
  const notice = $('#reschedule-notice');
  if (!chosen) {
    notice.hidden = true;
    return;
  }
  try {
    const answer = await api(
      '/tasks/' + encodeURIComponent(item.id) + '/reminder-notice?' + new URLSearchParams(chosen),
    );
    if (rescheduling !== item) return;
    notice.textContent = answer.notice || '';
    notice.hidden = !answer.notice;
  } catch {
    notice.hidden = true;
  }
}
$('#rs-start').addEventListener('change', () => void previewReschedule());
$('#rs-rate').addEventListener('input', () => {
  $('#rs-rate').removeAttribute('aria-invalid');
  showRateDose('rs', rescheduling && rescheduling.view && rescheduling.view.dose);
});
$('#rs-end').addEventListener('change', () => void previewReschedule());
onBolusInput('rs', 'reschedule-error', () => rescheduling);
$('#reschedule-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const item = rescheduling;
  const allowed = item.allowedWindow;
  const start = $('#rs-start');
  const end = $('#rs-end');
  const bad = [start, end].filter((input) => !input.value || !input.checkValidity());
  for (const input of [start, end]) input.setAttribute('aria-invalid', String(bad.includes(input)));
  if (bad.length || start.value > end.value) {
    $('#reschedule-error').textContent =
      'Choose dates within the allowed range ' +
      day(allowed.start) +
      ' to ' +
      lastDay(allowed.end) +
      ', the start not after the end.';
    (bad[0] || start).focus();
    return;
  }
  const dose = !$('#rs-rate-block').hidden && item.view.dose;
  const rate = dose ? chosenRate('rs', dose, 'reschedule-error') : undefined;
  if (rate === null) return;
  const bolus = dose ? chosenBolus('rs', dose, 'reschedule-error') : undefined;
  if (bolus === null) return;
  $('#reschedule-dialog').close();
  await decide(item, 'reschedule', { ...chosenWindow(item), ...(rate ? { rate } : {}), ...(bolus ? { bolus } : {}) });
});
$('#reschedule-cancel').addEventListener('click', () => $('#reschedule-dialog').close());

// Recording a check: the questions come from the Task's Questionnaire (GET /tasks/{id}/questionnaire), so the page
// asks what the protocol says to ask; the server checks the answers and calculates the scores (a 400 names what is
// wrong, shown here with the answers kept). Calculated questions (the PEG score) are not asked.
let checking = null;
async function askCheck(task) {
  try {
    const questionnaire = await api('/tasks/' + encodeURIComponent(task.id) + '/questionnaire');
    checking = { ...task, questionnaire };
    $('#check-title').textContent = 'Record ' + (questionnaire.title || 'check');
    $('#check-what').textContent = task.what;
    $('#check-questions').replaceChildren(...(questionnaire.item || []).map(questionField).filter(Boolean));
    $('#check-error').textContent = '';
    $('#check-dialog').showModal();
    const first = $('#check-questions input, #check-questions textarea');
    if (first) first.focus();
  } catch (error) {
    say(error.message, 'error');
  }
}
// The Questionnaire extensions the server checks answers with (/ui/config): computed items, and numeric bounds.
function extensionValue(item, url) {
  const e = (item.extension || []).find((x) => x.url === url);
  return e ? (e.valueInteger !== undefined ? e.valueInteger : e.valueDecimal) : undefined;
}
function questionField(item) {
  if (item.readOnly || (item.extension || []).some((e) => e.url === settings.questionnaireExtensions.calculated))
    return null;
  const id = 'q-' + item.linkId;
  const text = item.text + (item.required ? ' (required)' : '');
  if (item.type === 'group') {
    const set = el('fieldset');
    set.append(el('legend', item.text), ...(item.item || []).map(questionField).filter(Boolean));
    return set;
  }
  if (item.type === 'choice') {
    const set = el('fieldset');
    set.dataset.linkId = item.linkId;
    set.dataset.type = 'choice';
    set.append(el('legend', text));
    for (const option of item.answerOption || []) {
      const label = el('label', undefined, 'option');
      const input = document.createElement('input');
      input.type = item.repeats ? 'checkbox' : 'radio';
      input.name = id;
      input.value = option.valueCoding.code;
      input.dataset.system = option.valueCoding.system || '';
      label.append(input, document.createTextNode(' ' + (option.valueCoding.display || option.valueCoding.code)));
      set.append(label);
    }
    return set;
  }
  const wrap = el('div');
  const label = el('label', text);
  label.htmlFor = id;
  const input = document.createElement(item.type === 'text' ? 'textarea' : 'input');
  input.id = id;
  input.dataset.linkId = item.linkId;
  input.dataset.type = item.type;
  if (item.type === 'integer' || item.type === 'decimal') {
    input.type = 'number';
    input.step = item.type === 'integer' ? '1' : 'any';
    const min = extensionValue(item, settings.questionnaireExtensions.minValue);
    const max = extensionValue(item, settings.questionnaireExtensions.maxValue);
    if (min !== undefined) input.min = String(min);
    if (max !== undefined) input.max = String(max);
  } else if (item.type === 'text') input.rows = 2;
  wrap.append(label, input);
  return wrap;
}
// The answers as QuestionnaireResponse items (flat: the server lays them out as the Questionnaire does).
function checkAnswers() {
  const items = [];
  for (const input of document.querySelectorAll('#check-questions [data-link-id]')) {
    const linkId = input.dataset.linkId;
    if (input.dataset.type === 'choice') {
      const chosen = [...input.querySelectorAll('input:checked')].map((box) => ({
        valueCoding: { system: box.dataset.system, code: box.value },
      }));
      if (chosen.length) items.push({ linkId, answer: chosen });
    } else if (input.value.trim() !== '') {
      const value =
        input.dataset.type === 'integer'
          ? { valueInteger: Number(input.value) }
          : input.dataset.type === 'decimal'
            ? { valueDecimal: Number(input.value) }
            : { valueString: input.value.trim() };
      items.push({ linkId, answer: [value] });
    }
  }
  return items;
}
$('#check-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const task = checking;
  const response = { resourceType: 'QuestionnaireResponse', status: 'completed', item: checkAnswers() };
  try {
    await api('/tasks/' + encodeURIComponent(task.id) + '/$complete', {
      method: 'POST',
      body: JSON.stringify({ versionId: task.versionId, response }),
    });
    $('#check-dialog').close();
    await afterDecision('Recorded: ' + task.what, 'ok');
  } catch (error) {
    if (error.status === 400) {
      $('#check-error').textContent = error.message;
      return;
    }
    $('#check-dialog').close();
    if (error.status === 409 || error.status === 412)
      await afterDecision(
        'Someone else changed this task first: ' + error.message + ' The list has been reloaded.',
        'error',
      );
    else say(error.message, 'error');
  }
  if (!$('#patient-view').hidden && shownPatient) await showPatient(shownPatient);
});
$('#check-cancel').addEventListener('click', () => $('#check-dialog').close());

$('#bulk-approve').addEventListener('click', async () => {
  const chosen = selected()
    .map((id) => items.get(id))
    .filter(Boolean);
  if (!chosen.length) return;
  try {
    const result = await api('/tasks/$bulk-approve', {
      method: 'POST',
      body: JSON.stringify({ tasks: chosen.map((i) => ({ id: i.id, versionId: i.versionId })) }),
    });
    const refused = result.results.filter((r) => r.result !== 'approved');
    const chosenItem = (r) => chosen.find((i) => i.id === r.id);
    // Refusals named as their rows name them (the task and its patient), not by id.
    await afterDecision(
      'Approved ' +
        result.approved +
        ' of ' +
        counted(chosen.length, 'task') +
        (refused.length
          ? '; refused: ' +
            refused.map((r) => (chosenItem(r) ? describe(chosenItem(r)) : r.id) + ' (' + r.message + ')').join('; ')
          : ''),
      refused.length ? 'error' : 'ok',
    );
    // The EHR has ordered some already: the clinician chooses for each, as when approving it alone.
    orderedAfterBulk = refused
      .filter((r) => (r.code === 'duplicate' || namesOrders(r)) && chosenItem(r))
      .map((r) => ({
        item: chosenItem(r),
        message: r.message,
        // The result names each order in words ({reference, text}); else by reference alone.
        orders: r.orders && r.orders.length ? r.orders : ordersNamed([], r.expression),
        // Another care plan's session: only "beside it" (it is not this session's order).
        ehr: r.code === 'duplicate',
      }));
    askNextOrdered();
  } catch (error) {
    say(error.message, 'error');
  }
});

$('#select-all').addEventListener('change', () => {
  for (const box of document.querySelectorAll('#worklist tbody input.select:not(:disabled)'))
    box.checked = $('#select-all').checked;
  updateBulk();
});

let shownPatient = null;

async function showPatient(reference) {
  const id = (reference || '').split('/')[1];
  if (!id) return;
  try {
    const timeline = await api('/patients/' + encodeURIComponent(id) + '/timeline');
    const p = timeline.patient;
    $('#patient-heading').textContent = (p.name || reference) + (p.age !== undefined ? ', ' + p.age + ' years' : '');
    // Ids are for support, not for reading: in the title (hover), not the text.
    const summary = [p.birthDate ? 'born ' + p.birthDate : '', p.gender || ''].filter(Boolean).join(', ');
    $('#patient-summary').textContent = summary
      ? summary[0].toUpperCase() + summary.slice(1)
      : 'No birth date or gender on record';
    $('#patient-summary').title = reference;
    // The person's other records (a merge): their plans and history are shown here too.
    const others = (p.linkedRecords || []).length;
    if (p.mergedInto)
      $('#patient-summary').append(
        el(
          'span',
          'This record was merged into another in the EHR' +
            (p.mergedIntoName ? ' (' + p.mergedIntoName + ')' : '') +
            '; its history there is shown here too.',
          'badge notice merged',
        ),
      );
    else if (others)
      $('#patient-summary').append(
        el(
          'span',
          'Also shown: the history under ' + counted(others, 'other record') + ' of this person.',
          'badge notice merged',
        ),
      );
    $('#careplans').replaceChildren(
      ...timeline.carePlans.map((c) => {
        // An ended plan says why (its last note): a death recorded, and perhaps taken back since.
        const li = el(
          'li',
          (c.title || 'Care plan') +
            ': ' +
            (PLAN_STATUS[c.status] || c.status) +
            (c.note ? '. ' + c.note : '') +
            (c.subject ? ' (under another record of this person)' : ''),
        );
        li.title = 'CarePlan/' + c.id + ' (status ' + c.status + ')';
        return li;
      }),
    );
    showScores($('#patient-scores'), timeline.scores);
    if (timeline.effects) $('#patient-scores').append(effectsNote(timeline.effects));
    $('#timeline').replaceChildren(
      ...timeline.events.map((e) => {
        const li = el('li');
        li.dataset.type = e.type;
        li.append(
          el('span', minute(e.date), 'muted'),
          document.createTextNode(' '),
          el('span', e.type, 'type'),
          document.createTextNode(
            e.text +
              (e.status ? ' [' + e.status + ']' : '') +
              (e.who ? ', by ' + e.who : '') +
              (e.reason ? ': ' + e.reason : ''),
          ),
        );
        if ((e.type === 'order' && e.status === 'on-hold') || e.attention) li.className = 'ci-unresolved';
        if (e.type === 'follow-up' && e.answers) {
          const task = {
            id: e.reference.split('/')[1],
            versionId: e.versionId,
            what: e.text + ' for ' + (p.name || reference),
          };
          li.append(
            document.createTextNode(' '),
            button('Record check', 'Record check: ' + e.answers + ' for ' + (p.name || reference), () =>
              askCheck(task),
            ),
          );
        }
        if (e.type === 'contraindication' && e.status === 'unresolved') {
          const issue = {
            id: e.reference.split('/')[1],
            versionId: e.versionId,
            kind: e.kind,
            text: e.text.replace(
              /^(Contraindication|Effect to review|Answers to review|Infusion recorded in error|Infusion charted without its plan): /,
              '',
            ),
            holds: e.holds,
            evidence: e.evidence,
          };
          const plans = (e.plans || []).map((plan) => ({
            reference: plan,
            title: (timeline.carePlans.find((c) => 'CarePlan/' + c.id === plan) || {}).title,
          }));
          li.append(document.createTextNode(' '), overrideButton(issue, p.name || reference, plans));
        }
        return li;
      }),
    );
    shownPatient = reference;
    $('#worklist-view').hidden = true;
    $('#patient-view').hidden = false;
    $('#patient-heading').focus();
  } catch (error) {
    say(error.message, 'error');
  }
}

$('#back').addEventListener('click', () => {
  shownPatient = null;
  $('#patient-view').hidden = true;
  $('#worklist-view').hidden = false;
  $('#f-protocol').focus();
});
$('#filters').addEventListener('submit', (event) => {
  event.preventDefault();
  load(false);
});
for (const id of Object.keys(LISTS)) $('#list-' + id).addEventListener('click', () => showList(id));
$('#more').addEventListener('click', () => load(true));
$('#sign-in').addEventListener('click', () => signIn().catch((error) => say(error.message, 'error')));
$('#sign-out').addEventListener('click', signOut);

// An approved Task's status as the EHR carries it on (a nurse began the session there), in a clinician's words.
const EHR_STATUS = {
  'in-progress': 'begun in the EHR',
  accepted: 'accepted in the EHR',
  requested: 'requested in the EHR',
  received: 'received in the EHR',
};

// A care plan's FHIR status as a clinician says it (the code stays in the title for integrators).
const PLAN_STATUS = {
  draft: 'draft, not yet activated',
  active: 'active',
  'on-hold': 'on hold',
  revoked: 'stopped',
  completed: 'completed',
  'entered-in-error': 'entered in error',
};

async function start() {
  settings = await getJson('/ui/config');
  for (const zone of document.querySelectorAll('.clinic-zone')) zone.textContent = settings.timeZone;
  const query = new URLSearchParams(location.search);
  if (query.get('code') || query.get('error')) await finishSignIn(query);
  else if (query.get('iss')) return signIn({ iss: query.get('iss'), launch: query.get('launch') || undefined });
  let current = session();
  if (current && current.expiresAt < Date.now() && (await refreshSession())) current = session();
  if (!current || current.expiresAt < Date.now()) return showSignedOut();
  // The name for the clinician; the FHIR user reference only on hover (an integrator checking who is signed in).
  $('#who').textContent = 'Signed in as ' + current.name;
  $('#who').title = current.fhirUser || '';
  $('#sign-in').hidden = true;
  $('#sign-out').hidden = false;
  loadKinds();
  await loadProtocols().catch(() => undefined);
  await load(false);
  if (current.patient && !sessionStorage.getItem('kc-launched')) {
    sessionStorage.setItem('kc-launched', '1');
    await showPatient('Patient/' + current.patient);
  }
}
start().catch((error) => {
  showSignedOut(error.message, 'error');
});
