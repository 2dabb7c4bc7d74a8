/** Writes roles/build/deployment.example.env from the settings table (packages/fleet/src/settings.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleFile } from '@adt/fleet';

writeFileSync(join(import.meta.dirname, '../roles/build/deployment.example.env'), exampleFile());
