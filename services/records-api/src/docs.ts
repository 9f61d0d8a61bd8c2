import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** OpenAPI document of every route registered after this, served with Swagger UI at /docs (JSON at /docs/json). */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      // 3.1 so nullable fields can be written as JSON Schema type arrays, as the routes validate them.
      openapi: '3.1.0',
      info: {
        title: 'CMS records API',
        version: '1',
        description:
          'CDRs, calls and call legs from Cisco Meeting Server. Every /api route needs "Authorization: Bearer <token>"; ' +
          'roles are viewer < operator < admin. Errors are application/problem+json (RFC 9457).',
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'API_TOKEN (role admin) or a named token from api.tokens (role viewer, operator or admin).',
          },
        },
      },
    },
    // Shared schemas keep their $id as their component name instead of def-0, def-1, ...
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
