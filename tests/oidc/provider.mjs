// A certified OpenID Provider (npm `oidc-provider`) for the sign-on tests (tests/oidc_provider.py).
//
// One confidential client, the authorization code flow with PKCE required, and two accounts:
// `alice` (verified e-mail) and `bob` (unverified). Logins are non-interactive: the interaction
// route signs in the account named by the authorization request's `login_hint` and grants the
// requested scopes, so a test drives the whole flow with plain HTTP requests.
//
// Configured by the environment: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET,
// OIDC_REDIRECT_URI, and OIDC_CLAIMS_IN_USERINFO=1 to keep the e-mail out of the ID token
// (as providers that conform strictly do: the client reads it from the userinfo endpoint).
// Prints "oidc provider listening on <issuer>" when ready; SIGTERM stops it.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  alice: { email: 'alice@example.org', email_verified: true, name: 'Alice Example' },
  bob: { email: 'bob@example.org', email_verified: false, name: 'Bob Example' },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: process.env.OIDC_CLAIMS_IN_USERINFO === '1',
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (account === undefined) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
});

provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (match === null || ctx.method !== 'GET') {
    await next();
    return;
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (details.prompt.name === 'login') {
    const accountId = details.params.login_hint;
    if (accounts[accountId] === undefined) {
      ctx.status = 400;
      ctx.body = `unknown login_hint ${accountId}`;
      return;
    }
    result = { login: { accountId } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    result = { consent: { grantId: await grant.save() } };
  }
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc provider listening on ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
