// `npm run build`: the clinician page's files (plain HTML, CSS and JavaScript) beside the compiled controller that
// serves them, as tsc copies nothing but what it compiles.
import { cpSync } from 'node:fs';

cpSync('apps/api/src/clinician-ui/page', 'dist/apps/api/src/clinician-ui/page', { recursive: true });
