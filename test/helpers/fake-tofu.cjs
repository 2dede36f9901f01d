// A stand-in for the `tofu`/`terraform` executable in tests: it replays real `show -json`
// outputs (test/fixtures/testdata/iac/) and behaves as the scenario file beside it says. The test
// helper (fake-tofu.ts) writes it to a bin dir with a shebang naming this Node binary.
'use strict';
const { appendFileSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const here = path.dirname(process.argv[1]);
const scenario = JSON.parse(readFileSync(path.join(here, 'scenario.json'), 'utf8'));
const args = process.argv.slice(2);
const command = args[0] === 'state' ? `state ${args[1]}` : args[0];
appendFileSync(scenario.log, `${JSON.stringify({ argv: args, cwd: process.cwd(), env: process.env, pid: process.pid })}\n`);

const serialFile = path.join(here, 'serial');
const readSerial = () => Number(readFileSync(serialFile, 'utf8'));
const hang = () => setInterval(() => undefined, 1000);
const step = scenario[command] ?? {};
if (step.stderr) process.stderr.write(step.stderr);
if (step.stdoutBytes) process.stdout.write('~'.repeat(step.stdoutBytes));
if (step.hang) {
  if (command === 'plan') {
    const out = args.find((a) => a.startsWith('-out='));
    if (out) writeFileSync(out.slice(5), 'fake plan file');
  }
  hang();
} else {
  switch (command) {
    case 'init':
      process.stdout.write('OpenTofu has been successfully initialized!\n');
      break;
    case 'state pull':
      process.stdout.write(JSON.stringify({ version: 4, serial: readSerial(), lineage: 'fake', resources: [] }));
      break;
    case 'plan': {
      const out = args.find((a) => a.startsWith('-out='));
      if (out && (step.exit ?? 0) !== 1) writeFileSync(out.slice(5), `fake plan of ${scenario.show}`);
      if (step.bumpSerial) writeFileSync(serialFile, String(readSerial() + 1));
      break;
    }
    case 'show':
      if (scenario.showText !== undefined) process.stdout.write(scenario.showText);
      else process.stdout.write(readFileSync(scenario.show, 'utf8'));
      break;
    default:
      process.stderr.write(`fake-tofu: unexpected command ${command}\n`);
      process.exit(1);
  }
  process.exitCode = step.exit ?? 0;
}
