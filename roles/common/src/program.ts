/** The program of roles/common itself (its config wrapper commands run from roles/common/configwrapper/). */
import { runProgram } from './command.ts';
import { commonCommands } from './commands.ts';

const [name, ...argv] = process.argv.slice(2);
await runProgram('common', commonCommands('common'), name, argv);
