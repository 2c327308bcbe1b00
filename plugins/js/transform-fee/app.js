// transform-fee: the fee calculator, a docket step in JavaScript.
//
// The config is the office's published fee table: per permit kind a base
// fee, a rate per square metre of floor area and an optional minimum, and
// surcharges that apply when the application carries a flag (a fixed
// amount or a percentage of the subtotal). The step continues with the
// application and a `fee` object: every line of the computation, the
// total, and the currency, so that the applicant's invoice can show how
// the figure came about.
//
// Money is computed in whole cents: binary floating point cannot hold 0.1,
// and an invoice must add up to the cent.
//
// Built into a component with componentize-js against
// wit/ (see docs/plugins-js.md); `cargo xtask plugins` does it.

import { log } from 'docket:step/log@0.1.0';

const NAME = 'transform-fee';
const VERSION = '1.0.0';

const AMOUNT = { type: 'number', minimum: 0 };

const CONFIG_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['currency', 'kinds'],
  additionalProperties: false,
  properties: {
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    kinds: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['base'],
        additionalProperties: false,
        properties: { base: AMOUNT, per_m2: AMOUNT, minimum: AMOUNT },
      },
    },
    surcharges: {
      type: 'array',
      items: {
        type: 'object',
        required: ['flag'],
        additionalProperties: false,
        properties: {
          flag: { type: 'string', minLength: 1 },
          amount: AMOUNT,
          percent: AMOUNT,
        },
      },
    },
  },
};

const INPUT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['kind', 'area_m2'],
  properties: {
    kind: { type: 'string' },
    area_m2: { type: 'number', minimum: 0 },
    flags: { type: 'array', items: { type: 'string' } },
  },
};

const OUTPUT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['fee'],
  properties: {
    fee: {
      type: 'object',
      required: ['currency', 'total', 'lines'],
      properties: {
        currency: { type: 'string' },
        total: { type: 'number' },
        lines: {
          type: 'array',
          items: {
            type: 'object',
            required: ['item', 'amount'],
            properties: { item: { type: 'string' }, amount: { type: 'number' } },
          },
        },
      },
    },
  },
};

class ConfigError extends Error {
  constructor(pointer, message) {
    super(`invalid config at \`${pointer}\`: ${message}`);
  }
}

function escape(segment) {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAmount(value) {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function onlyKeys(object, pointer, allowed) {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      throw new ConfigError(`${pointer}/${escape(key)}`, `unknown field, expected one of ${allowed.join(', ')}`);
    }
  }
}

// Checked by hand against CONFIG_SCHEMA: the guest carries no JSON Schema
// library, and a hand check names the first wrong value by its pointer.
function parseConfig(text) {
  let config;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('', `not JSON: ${err.message}`);
  }
  if (!isObject(config)) throw new ConfigError('', 'expected an object');
  onlyKeys(config, '', ['currency', 'kinds', 'surcharges']);
  if (typeof config.currency !== 'string' || !/^[A-Z]{3}$/.test(config.currency)) {
    throw new ConfigError('/currency', 'expected a three-letter currency code such as `EUR`');
  }
  if (!isObject(config.kinds)) throw new ConfigError('/kinds', 'expected an object mapping permit kinds to fees');
  for (const [kind, fees] of Object.entries(config.kinds)) {
    const pointer = `/kinds/${escape(kind)}`;
    if (!isObject(fees)) throw new ConfigError(pointer, 'expected an object with `base`');
    onlyKeys(fees, pointer, ['base', 'per_m2', 'minimum']);
    if (!isAmount(fees.base)) throw new ConfigError(`${pointer}/base`, 'expected an amount of at least 0');
    for (const key of ['per_m2', 'minimum']) {
      if (key in fees && !isAmount(fees[key])) {
        throw new ConfigError(`${pointer}/${key}`, 'expected an amount of at least 0');
      }
    }
  }
  const surcharges = config.surcharges ?? [];
  if (!Array.isArray(surcharges)) throw new ConfigError('/surcharges', 'expected a list of surcharges');
  surcharges.forEach((surcharge, i) => {
    const pointer = `/surcharges/${i}`;
    if (!isObject(surcharge)) throw new ConfigError(pointer, 'expected an object with `flag`');
    onlyKeys(surcharge, pointer, ['flag', 'amount', 'percent']);
    if (typeof surcharge.flag !== 'string' || surcharge.flag === '') {
      throw new ConfigError(`${pointer}/flag`, 'expected a non-empty string');
    }
    if (('amount' in surcharge) === ('percent' in surcharge)) {
      throw new ConfigError(pointer, 'expected exactly one of `amount` and `percent`');
    }
    const key = 'amount' in surcharge ? 'amount' : 'percent';
    if (!isAmount(surcharge[key])) throw new ConfigError(`${pointer}/${key}`, 'expected an amount of at least 0');
  });
  return { currency: config.currency, kinds: config.kinds, surcharges };
}

const cents = (amount) => Math.round(amount * 100);

function reject(pointer, code, message) {
  return { tag: 'reject', val: [{ pointer, code, message }] };
}

export const step = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      kind: 'transform',
      description: 'Computes the permit fee from the published fee table: base fee, rate per m², minimum and surcharges.',
      configSchema: JSON.stringify(CONFIG_SCHEMA),
      inputSchema: JSON.stringify(INPUT_SCHEMA),
      outputSchema: JSON.stringify(OUTPUT_SCHEMA),
      routes: [],
    };
  },

  checkConfig(config) {
    try {
      parseConfig(config);
    } catch (err) {
      // A thrown value becomes the `err` of the WIT `result`.
      if (err instanceof ConfigError) throw err.message;
      throw err;
    }
    return [];
  },

  run(ctx, configText, inputText) {
    let table;
    try {
      table = parseConfig(configText);
    } catch (err) {
      if (err instanceof ConfigError) throw { tag: 'permanent', val: err.message };
      throw err;
    }
    let application;
    try {
      application = JSON.parse(inputText);
    } catch (err) {
      return reject('', 'invalid-input', `not JSON: ${err.message}`);
    }
    // The same shape the Rust SDK gives input that does not parse: a
    // rejection the applicant can act on, not an error of the step.
    if (!isObject(application)) return reject('', 'invalid-input', 'expected an object');
    const { kind, area_m2: area } = application;
    if (typeof kind !== 'string') return reject('/kind', 'invalid-input', 'expected the permit kind, a string');
    if (!isAmount(area)) return reject('/area_m2', 'invalid-input', 'expected the floor area in m², a number of at least 0');
    const flags = application.flags ?? [];
    if (!Array.isArray(flags) || !flags.every((f) => typeof f === 'string')) {
      return reject('/flags', 'invalid-input', 'expected a list of strings');
    }
    const fees = table.kinds[kind];
    if (fees === undefined) {
      return reject('/kind', 'unknown-kind', `the fee table has no fee for permit kind \`${kind}\``);
    }

    const lines = [{ item: `base fee (${kind})`, cents: cents(fees.base) }];
    if (fees.per_m2) {
      lines.push({ item: `${area} m² at ${fees.per_m2} per m²`, cents: Math.round(area * cents(fees.per_m2)) });
    }
    let subtotal = lines.reduce((sum, line) => sum + line.cents, 0);
    if (fees.minimum !== undefined && subtotal < cents(fees.minimum)) {
      lines.push({ item: `raised to the minimum fee of ${fees.minimum}`, cents: cents(fees.minimum) - subtotal });
      subtotal = cents(fees.minimum);
    }
    // Percentages apply to the subtotal before any surcharge, so the order
    // of the table's surcharges does not change the total.
    for (const surcharge of table.surcharges) {
      if (!flags.includes(surcharge.flag)) continue;
      const amount = 'amount' in surcharge ? cents(surcharge.amount) : Math.round((subtotal * surcharge.percent) / 100);
      const label = 'amount' in surcharge ? `surcharge: ${surcharge.flag}` : `surcharge: ${surcharge.flag} (${surcharge.percent}%)`;
      lines.push({ item: label, cents: amount });
    }
    const total = lines.reduce((sum, line) => sum + line.cents, 0);
    log('info', `fee for ${ctx.caseId}: ${total / 100} ${table.currency} in ${lines.length} lines`);
    const fee = {
      currency: table.currency,
      total: total / 100,
      lines: lines.map((line) => ({ item: line.item, amount: line.cents / 100 })),
    };
    return { tag: 'continue', val: JSON.stringify({ ...application, fee }) };
  },
};
