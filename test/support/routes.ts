import { Hono } from 'hono';

export interface RouteRequest {
  method: string;
  path: string;
}

/**
 * Every concrete request to the app's routes of the given methods, read from the app itself so a
 * route added later is tested too: each `:param` takes each of its values; a parameter without
 * values fails the test, naming the route.
 */
export function routeRequests(
  app: Hono,
  methods: readonly string[],
  values: Record<string, (path: string) => readonly string[]>,
): RouteRequest[] {
  return app.routes
    .filter((route) => methods.includes(route.method))
    .flatMap((route) => {
      let paths = [route.path];
      for (const [, name] of route.path.matchAll(/:(\w+)/g)) {
        const of = values[name];
        if (!of) throw new Error(`${route.method} ${route.path}: no test values for :${name}`);
        paths = paths.flatMap((path) => of(route.path).map((value) => path.replace(`:${name}`, value)));
      }
      return paths.map((path) => ({ method: route.method, path }));
    });
}
