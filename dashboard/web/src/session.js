// Sign-in: the one owner of the credentials the dashboard reads with. They
// live in its storage (the tab's sessionStorage: gone with the tab) and in
// Authorization headers only, never in a URL.

/**
 * What a sign-in holds: a token for the Genesys-compatible API with the
 * names of its organization and client, an API key for the service-usage
 * reports, or both.
 * @typedef {object} Credentials
 * @property {string} [token]
 * @property {number} [expires] when the token expires, in ms since the epoch
 * @property {string} [org]
 * @property {string} [client]
 * @property {string} [apiKey]
 */

/**
 * The demo's credentials, when the server runs --demo.
 * @typedef {{clientId: string, clientSecret: string, apiKey: string}} Demo
 */

/**
 * What a session asks the server.
 * @typedef {object} SignInAPI
 * @property {(clientId: string, clientSecret: string) => Promise<Credentials>} signIn
 * @property {(apiKey: string) => Promise<void>} checkKey
 * @property {() => Promise<Demo | null>} demoSession
 */

/** @typedef {Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>} KeyValueStore */

const KEY = 'usaged.session';

/**
 * createSession returns the sign-in of one page: its credentials, read from
 * storage, and the ways to change them. now is the clock that expires a
 * token.
 * @param {SignInAPI} api
 * @param {KeyValueStore} storage
 * @param {() => number} [now]
 */
export function createSession(api, storage, now = Date.now) {
  /** @type {Credentials} */
  let creds = load();
  /** @type {Demo | null} */
  let demo = null;

  /** @returns {Credentials} */
  function load() {
    try {
      const s = JSON.parse(storage.getItem(KEY) || '{}') || {};
      if (s.token && s.expires && s.expires < now()) delete s.token;
      return s;
    } catch {
      return {};
    }
  }
  /** @param {Credentials} next */
  function save(next) {
    creds = next;
    storage.setItem(KEY, JSON.stringify(creds));
  }
  async function signInDemo() {
    if (!demo) return;
    try {
      save({ ...(await api.signIn(demo.clientId, demo.clientSecret)), apiKey: demo.apiKey });
    } catch {
      save({ apiKey: demo.apiKey });
    }
  }

  return {
    /** @returns {Readonly<Credentials>} the credentials now */
    get: () => ({ ...creds }),
    /** @param {'token' | 'apiKey'} what @returns {boolean} whether the session holds it */
    has: (what) => Boolean(creds[what]),
    /** @returns {boolean} whether the session holds any credentials */
    signedIn: () => Boolean(creds.token || creds.apiKey),
    /** @returns {string} who is signed in, for the page's header */
    who: () => [creds.org, creds.apiKey && !creds.org ? 'API key' : ''].filter(Boolean).join(' · '),

    // start signs in to the server's demo, if it runs one and the tab holds
    // no credentials yet.
    async start() {
      if (this.signedIn()) return;
      demo = await api.demoSession();
      await signInDemo();
    },

    /** signInClient signs in with an OAuth client's credentials. @param {string} id @param {string} secret */
    async signInClient(id, secret) {
      save({ ...creds, ...(await api.signIn(id, secret)) });
    },

    /** signInKey signs in with an API key, once the reports accept it. @param {string} apiKey */
    async signInKey(apiKey) {
      await api.checkKey(apiKey);
      save({ ...creds, apiKey });
    },

    /**
     * expired handles a token the server no longer accepts: a demo signs in
     * again (true); otherwise the token is dropped (false).
     * @returns {Promise<boolean>}
     */
    async expired() {
      // A demo page reloaded with its session kept has not asked yet.
      demo = demo || (await api.demoSession());
      if (demo) {
        await signInDemo();
        return true;
      }
      const { token, expires, ...rest } = creds; // eslint-disable-line no-unused-vars
      save(rest);
      return false;
    },

    signOut() {
      storage.removeItem(KEY);
      creds = {};
      demo = null;
    },
  };
}

/** @typedef {ReturnType<typeof createSession>} Session */
