// OpenAI-compatible routing for the llmops gateway (njs 0.7). Managed by llmops.datacenter.gateway.
// Authenticates the Bearer key by its SHA-256, reads the JSON body's "model", checks that the
// key's tenant may use it and hands the request to that model's upstream (a named location).
// Routing data (key digests, routes, models) is rendered from the serving spec into
// llmops_gateway_data.js; this file holds no site data.
import crypto from 'crypto';
import data from 'llmops_gateway_data.js';

function fail(r, status, type, code, message) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: {message: message, type: type, param: null, code: code}}) + '\n');
}

function bearer(r) {
    const header = r.headersIn['Authorization'];
    if (!header) {
        return null;
    }
    const match = /^Bearer[ \t]+([^ \t]+)[ \t]*$/i.exec(header);
    return match ? match[1] : null;
}

// The key's entry {id, tenant, models}, or null. Only the digest is ever compared or stored.
function caller(r) {
    const key = bearer(r);
    if (!key) {
        return null;
    }
    const digest = crypto.createHash('sha256').update(key).digest('hex');
    return data.keys[digest] || null;
}

// js_set: the key id for limit_req and the access log ("" for no or an unknown key).
function keyId(r) {
    const entry = caller(r);
    return entry ? entry.id : '';
}

function tenant(r) {
    const entry = caller(r);
    return entry ? entry.tenant : '';
}

function unauthorized(r) {
    fail(r, 401, 'invalid_request_error', 'invalid_api_key',
         'Incorrect or missing API key: send "Authorization: Bearer <key>".');
}

// GET /v1/models: only the models the caller's tenant may use.
function models(r) {
    const entry = caller(r);
    if (!entry) {
        return unauthorized(r);
    }
    if (r.method !== 'GET') {
        return fail(r, 405, 'invalid_request_error', 'method_not_allowed', 'Use GET for ' + r.uri + '.');
    }
    const listed = entry.models.filter(function (m) { return m in data.models; }).map(function (m) {
        return {id: m, object: 'model', created: 0, owned_by: data.models[m].owned_by};
    });
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify({object: 'list', data: listed}) + '\n');
}

// POST /v1/chat/completions and /v1/completions.
function route(r) {
    const entry = caller(r);
    if (!entry) {
        return unauthorized(r);
    }
    if (r.method !== 'POST') {
        return fail(r, 405, 'invalid_request_error', 'method_not_allowed', 'Use POST for ' + r.uri + '.');
    }
    const text = r.requestText;
    if (text === undefined) {
        // The body did not fit in memory (client_body_buffer_size): refuse rather than guess.
        return fail(r, 413, 'invalid_request_error', 'request_too_large', 'The request body is too large.');
    }
    let body;
    try {
        body = JSON.parse(text);
    } catch (e) {
        return fail(r, 400, 'invalid_request_error', 'invalid_json', 'The request body is not valid JSON.');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        return fail(r, 400, 'invalid_request_error', 'invalid_json', 'The request body must be a JSON object.');
    }
    const model = body.model;
    if (typeof model !== 'string' || model.length === 0) {
        return fail(r, 400, 'invalid_request_error', 'missing_model', 'You must provide a model parameter.');
    }
    r.variables.llmops_model = model;
    if (!(model in data.models)) {
        return fail(r, 404, 'invalid_request_error', 'model_not_found',
                    'The model `' + model + '` does not exist.');
    }
    if (entry.models.indexOf(model) < 0) {
        return fail(r, 403, 'invalid_request_error', 'model_not_allowed',
                    'Your API key may not use the model `' + model + '`.');
    }
    const upstream = data.routes[model];
    if (!upstream) {
        return fail(r, 503, 'server_error', 'no_healthy_replica', 'The model `' + model + '` has no replica serving.');
    }
    r.internalRedirect('@' + upstream);
}

export default {keyId, tenant, models, route};
