// @ts-check
// The API reference page (/docs): Swagger UI reading the service's own OpenAPI document.

const root = document.getElementById("api-docs");
if (root && window.SwaggerUIBundle) {
  window.SwaggerUIBundle({
    url: root.dataset.specUrl || "/openapi.json",
    domNode: root,
    deepLinking: true,
    // Swagger UI would send the document to validator.swagger.io for a badge: nothing leaves.
    validatorUrl: null,
  });
}
