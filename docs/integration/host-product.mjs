// A tiny example host product: the SaaS app that Tally is the Billing part of. It has its own
// people and roles; its "Billing & credits" link asks Tally (with the operator token, from
// this server, never the browser) for a one-time sign-in link and sends the browser there.
//
//   TALLY_URL=http://127.0.0.1:3000 TALLY_OPERATOR_TOKEN=… TALLY_WORKSPACE_ID=ws_… \
//     node docs/integration/host-product.mjs      # serves http://127.0.0.1:4000
//
// No dependencies: Node 18 or later.
import http from 'node:http';

const tally = process.env.TALLY_URL ?? 'http://127.0.0.1:3000';
const token = process.env.TALLY_OPERATOR_TOKEN ?? '';
const workspace = process.env.TALLY_WORKSPACE_ID ?? 'ws_acmeai0demo0000001';
const port = Number(process.env.HOST_PRODUCT_PORT ?? 4000);

// The product's own people, as its database would have them.
const people = {
  user_ada: { email: 'ada@acme.test', name: 'Ada', role: 'finance' },
  user_bob: { email: 'bob@acme.test', name: 'Bob', role: 'engineer' },
  user_cy: { email: 'cy@acme.test', name: 'Cy', role: 'workspace_admin' },
};

// The product's roles mapped to Tally's: who may buy credits is Tally's rule from here on.
const tallyRole = { workspace_admin: 'admin', finance: 'billing_admin', engineer: 'member' };

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(signedIn) {
  const choices = Object.entries(people)
    .map(([id, p]) => `<li><a href="/sign-in?as=${id}">Sign in as ${escape(p.name)} (${escape(p.role)})</a></li>`)
    .join('');
  const who = signedIn
    ? `<p>Signed in as <strong>${escape(signedIn.name)}</strong> (${escape(signedIn.role)}).</p>
       <p><a id="billing" href="/billing">Billing &amp; credits</a></p>`
    : '<p>Nobody is signed in.</p>';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example host product</title></head>
<body><main><h1>Example host product</h1>${who}<ul>${choices}</ul></main></body></html>`;
}

function signedInAs(req) {
  const cookie = req.headers.cookie ?? '';
  const id = /(?:^|;\s*)host_user=(\w+)/.exec(cookie)?.[1];
  return id && people[id] ? { id, ...people[id] } : null;
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (url.pathname === '/sign-in' && people[url.searchParams.get('as')]) {
    res.writeHead(303, { location: '/', 'set-cookie': `host_user=${url.searchParams.get('as')}; Path=/; HttpOnly; SameSite=Lax` });
    return res.end();
  }
  if (url.pathname === '/billing') {
    const person = signedInAs(req);
    if (!person) {
      res.writeHead(303, { location: '/' });
      return res.end();
    }
    // Server to server: the operator token never reaches the browser.
    const answer = await fetch(`${tally}/api/operator/portal_sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        workspace_id: workspace,
        user: { email: person.email, name: person.name, external_id: person.id },
        role: tallyRole[person.role],
        return_url: `http://${req.headers.host}/`,
      }),
    });
    if (answer.status !== 201) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      return res.end(`Billing is unavailable (${answer.status}).`);
    }
    const { url: link } = await answer.json();
    res.writeHead(303, { location: link });
    return res.end();
  }
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(page(signedInAs(req)));
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('Not found');
});

server.listen(port, '127.0.0.1', () => console.log(`Example host product on http://127.0.0.1:${port}`));
