// The API reference: Swagger UI (from the pinned swagger-ui-bundle-v2 package, served by this
// app) over /api/openapi.json. The function key (FunctionKey, key.js) goes as x-functions-key on
// every request it makes, the document's and "Try it out"'s, and is never shown: the curl line
// shows the request as written, not as sent (showMutatedRequest: false).
'use strict';

window.SwaggerUIBundle({
  url: 'openapi.json', // relative to /api/docs
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null, // no badge from another host
  showMutatedRequest: false,
  requestInterceptor: (request) => {
    if (FunctionKey.value) request.headers = { ...request.headers, 'x-functions-key': FunctionKey.value };
    return request;
  },
});
