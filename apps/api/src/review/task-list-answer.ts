import type { Request } from 'express';
import { encodeCursor } from '@kc/worklist-index';
import type { Worklist } from './worklist.service';

/** A task list page as the API answers it: the page, and a `next` link carrying the same query and the cursor. */
export function taskListAnswer(path: string, query: Record<string, unknown>, req: Request, page: Worklist) {
  const { cursor, ...result } = page;
  const next = new URLSearchParams(query as Record<string, string>);
  if (cursor) next.set('cursor', encodeCursor(cursor));
  return { ...result, next: cursor ? `${req.baseUrl}/${path}?${next.toString()}` : undefined };
}
