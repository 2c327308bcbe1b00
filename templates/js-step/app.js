// my-step: a docket step in JavaScript. Rename the directory, `NAME`, and
// the package and world in wit/world.wit together (see docs/plugins-js.md).

import { log } from 'docket:step/log@0.1.0';

const NAME = 'my-step';
const VERSION = '0.1.0';

const CONFIG_SCHEMA = { type: 'object', required: ['minimum'], properties: { minimum: { type: 'integer' } } };
const INPUT_SCHEMA = { type: 'object', required: ['age'], properties: { age: { type: 'integer' } } };

function parseConfig(text) {
  const config = JSON.parse(text);
  if (typeof config !== 'object' || config === null || !Number.isInteger(config.minimum)) {
    throw 'invalid config at `/minimum`: expected an integer';
  }
  return config.minimum;
}

export const step = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      kind: 'validate',
      description: 'Rejects an applicant under the minimum age.',
      configSchema: JSON.stringify(CONFIG_SCHEMA),
      inputSchema: JSON.stringify(INPUT_SCHEMA),
      outputSchema: JSON.stringify(INPUT_SCHEMA),
      routes: [],
    };
  },

  checkConfig(config) {
    parseConfig(config); // a thrown string is the `err` of the WIT result
    return [];
  },

  run(ctx, config, input) {
    let minimum;
    try {
      minimum = parseConfig(config);
    } catch (message) {
      throw { tag: 'permanent', val: String(message) };
    }
    const applicant = JSON.parse(input);
    if (!Number.isInteger(applicant?.age)) {
      return { tag: 'reject', val: [{ pointer: '/age', code: 'invalid-input', message: 'expected the age, an integer' }] };
    }
    if (applicant.age < minimum) {
      return { tag: 'reject', val: [{ pointer: '/age', code: 'too-young', message: `the applicant must be at least ${minimum}` }] };
    }
    log('info', `case ${ctx.caseId}: old enough`);
    return { tag: 'continue', val: input };
  },
};
