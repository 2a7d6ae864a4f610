import type { INestApplication } from '@nestjs/common';

export interface Route {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Express path, e.g. /tasks/:id/\$approve; the catch-all as {/*splat}. */
  path: string;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Every route the running app registers (Nest controllers and anything mounted on the Express router). */
export function registeredRoutes(app: INestApplication): Route[] {
  const express = app.getHttpAdapter().getInstance() as {
    router: { stack: { route?: { path: string | string[]; methods: Record<string, boolean> } }[] };
  };
  return express.router.stack.flatMap((layer) => {
    if (!layer.route) return [];
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    return paths.flatMap((path) =>
      Object.keys(layer.route!.methods)
        .filter((method) => METHODS.includes(method))
        .map((method) => ({ method: method as Route['method'], path })),
    );
  });
}

/** A concrete path: every :param replaced (by `fill`), the catch-all by a path nothing serves. */
export function concretePath(path: string, fill: (param: string) => string): string {
  return path
    .replace('{/*splat}', '/no-such-endpoint')
    .replace(/:(\w+)/g, (_, name: string) => fill(name))
    .replace(/\\\$/g, '$');
}
