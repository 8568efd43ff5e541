// The function key of the pages this app serves (the dashboard, the API reference): read once
// from the page's ?code= (as the Functions host takes it, in any case), kept in sessionStorage
// (this tab, this origin) and taken out of the address bar, so it is not bookmarked, shared,
// shown or sent on in a Referer. The pages send it as the x-functions-key header only.
'use strict';

const FunctionKey = (() => {
  const STORE = 'entraSyncMonitor.functionKey';
  const isKey = (name) => name.toLowerCase() === 'code';

  // `href` (absolute or relative to this page) as a same-origin path, without the key.
  function withoutKey(href) {
    const url = new URL(href, window.location.href);
    for (const name of [...url.searchParams.keys()].filter(isKey)) url.searchParams.delete(name);
    return url.pathname + url.search + url.hash;
  }

  const here = new URL(window.location.href);
  const given = [...here.searchParams].find(([name, value]) => isKey(name) && value)?.[1] || '';
  if ([...here.searchParams.keys()].some(isKey)) {
    window.history.replaceState(window.history.state, '', withoutKey(here.href));
  }
  let value = given;
  try {
    if (given) window.sessionStorage.setItem(STORE, given);
    value = window.sessionStorage.getItem(STORE) || '';
  } catch {
    value = given; // storage refused (a locked-down browser): this page view still has the key
  }
  return Object.freeze({ value, withoutKey });
})();
