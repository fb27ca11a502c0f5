// Validates an OpenAPI document with @apidevtools/swagger-parser (schema and
// $refs), as a real client generator would read it.
//
//   node openapi_validate.js FILE
//
// Prints {"ok": true, "openapi": "3.1.0", "paths": N} or {"ok": false, "error": "..."}.
"use strict";

const SwaggerParser = require("@apidevtools/swagger-parser");

SwaggerParser.validate(process.argv[2])
  .then((api) => {
    process.stdout.write(
      JSON.stringify({ ok: true, openapi: api.openapi, paths: Object.keys(api.paths).length }) + "\n"
    );
  })
  .catch((e) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e.message || e) }) + "\n");
  });
