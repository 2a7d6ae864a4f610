/**
 * The clinician worklist page: plain HTML and JavaScript, no build step. It calls the same API as any client
 * (/worklist, /tasks/:id/$approve|$reject) with the token the clinician pastes, kept in sessionStorage only.
 */
export const WORKLIST_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ketamine care plans: worklist</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2433; }
  h1 { font-size: 1.4rem; }
  table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #dde3ec; vertical-align: top; }
  th { background: #f3f6fa; }
  .overdue { color: #a4262c; font-weight: 600; }
  button { margin-right: .3rem; cursor: pointer; }
  #message { min-height: 1.4rem; margin-top: .8rem; }
  #message.error { color: #a4262c; }
  #message.ok { color: #1e6b34; }
  input[type=password] { width: 28rem; }
</style>
</head>
<body>
<h1>Follow-up tasks awaiting approval</h1>
<form id="login">
  <label>Clinician token <input id="token" type="password" autocomplete="off" placeholder="paste a bearer token"></label>
  <button type="submit">Load worklist</button>
</form>
<div id="message" role="status"></div>
<table id="worklist" hidden>
  <thead><tr><th>Due</th><th>Task</th><th>Patient</th><th>Status</th><th></th></tr></thead>
  <tbody></tbody>
</table>
<button id="more" type="button" hidden>Show more</button>
<script>
const $ = (selector) => document.querySelector(selector);
const tokenInput = $('#token');
tokenInput.value = sessionStorage.getItem('kc-token') || '';

function say(text, kind) {
  const message = $('#message');
  message.textContent = text;
  message.className = kind || '';
}

async function api(path, options) {
  const response = await fetch(path, {
    ...options,
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + tokenInput.value.trim(), ...(options && options.headers) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const text = (body.issue && body.issue[0] && body.issue[0].details && body.issue[0].details.text) || ('HTTP ' + response.status);
    const error = new Error(text);
    error.status = response.status;
    throw error;
  }
  return body;
}

function day(iso) { return iso ? new Date(iso).toISOString().slice(0, 16).replace('T', ' ') : ''; }

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

let nextPage;

async function load(more) {
  sessionStorage.setItem('kc-token', tokenInput.value.trim());
  try {
    // Cursor paging: "Show more" follows the worklist's next link (a place in the order, not a page number).
    const list = await api(more && nextPage ? nextPage : '/worklist?count=100');
    nextPage = list.next;
    $('#more').hidden = !nextPage;
    const body = $('#worklist tbody');
    if (!more) body.replaceChildren();
    for (const item of list.items) {
      const row = document.createElement('tr');
      row.dataset.taskId = item.id;
      row.append(
        cell(day(item.due && item.due.start) + ' .. ' + day(item.due && item.due.end), item.overdue ? 'overdue' : ''),
        cell(item.description || item.kind || ''),
        cell(item.patient || ''),
        cell(item.overdue ? 'overdue' : (item.businessStatus || '')),
      );
      const actions = document.createElement('td');
      const approve = document.createElement('button');
      approve.textContent = 'Approve';
      approve.onclick = () => decide(item, 'approve');
      const reject = document.createElement('button');
      reject.textContent = 'Reject';
      reject.onclick = () => decide(item, 'reject');
      actions.append(approve, reject);
      row.append(actions);
      body.append(row);
    }
    $('#worklist').hidden = false;
    say(list.total + ' task(s) awaiting approval', 'ok');
  } catch (error) {
    say(error.status === 401 ? 'Your token is missing, invalid or expired.' : error.message, 'error');
  }
}

async function decide(item, decision) {
  const body = { versionId: item.versionId };
  if (decision === 'reject') {
    const reason = window.prompt('Why reject this task?');
    if (!reason) return;
    body.reason = reason;
  }
  try {
    await api('/tasks/' + encodeURIComponent(item.id) + '/$' + decision, { method: 'POST', body: JSON.stringify(body) });
    say((decision === 'approve' ? 'Approved: ' : 'Rejected: ') + (item.description || item.id), 'ok');
    const message = $('#message').textContent;
    await load();
    say(message, 'ok');
  } catch (error) {
    say(error.status === 409 || error.status === 412 ? 'Someone else changed this task first: ' + error.message + ' The list has been reloaded.' : error.message, 'error');
    if (error.status === 409 || error.status === 412) {
      const message = $('#message').textContent;
      await load();
      say(message, 'error');
    }
  }
}

$('#login').addEventListener('submit', (event) => { event.preventDefault(); load(); });
$('#more').addEventListener('click', () => load(true));
if (tokenInput.value) load();
</script>
</body>
</html>
`;
