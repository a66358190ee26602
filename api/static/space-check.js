// Search-space overrides checked in the page against GET /v1/search-space, with the grammar the server applies:
// keys are dimensions ("kernel": every stage), decision labels ("stage2/kernel", "train/lr") or "stage_count";
// a value is a scalar, a list of choices, {"choices": [...]} or {"low", "high"} (+ "log" on floats, "step" on
// integer ranges). The server stays the authority: its 422 is still shown for what only it knows (hard limits).

const STAGE_LABEL = /^stage(\d+)\/([a-z_]+)$/;
const STAGE_COUNT_ALIAS = "stage_count";

const show = (value) => JSON.stringify(value);
const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

// Whether `value` has the dimension's type ("int" | "float" | "str" | "bool"), else what it must be.
function typeProblem(type, value) {
  if (type === "int") return Number.isInteger(value) ? null : "must be an integer";
  if (type === "float") return isNumber(value) ? null : "must be a number";
  if (type === "str") return typeof value === "string" ? null : "must be a string";
  if (type === "bool") return typeof value === "boolean" ? null : "must be true or false";
  return null;
}

const describe = (domain) => (domain.kind === "categorical"
  ? `one of ${show(domain.choices)}` : `in [${domain.low}, ${domain.high}]`);

// Whether a value of the right type lies in the served (default) domain.
const inDomain = (domain, value) => (domain.kind === "categorical"
  ? domain.choices.some((choice) => choice === value) : domain.low <= value && value <= domain.high);

// The problems of one override value, as messages without the key.
function valueProblems(dim, raw, { beyondDefaults }) {
  const { type, domain, grid } = dim;
  const problems = [];
  const checkValue = (value, prefix = "") => {
    const bad = typeProblem(type, value);
    if (bad) problems.push(`${prefix}${show(value)} ${bad}`);
    else if (!beyondDefaults && !inDomain(domain, value)) {
      problems.push(`${prefix}${show(value)} is outside the domain: ${describe(domain)}`);
    }
    return !bad;
  };
  const checkChoices = (values) => {
    if (!values.length) { problems.push("needs at least one choice"); return; }
    values.forEach((value) => checkValue(value));
    if (new Set(values.map(show)).size !== values.length) problems.push(`duplicate choices in ${show(values)}`);
  };
  if (Array.isArray(raw)) { checkChoices(raw); return problems; }
  if (raw === null || typeof raw !== "object") { checkValue(raw); return problems; }
  const keys = Object.keys(raw);
  if (keys.length === 1 && keys[0] === "choices") {
    if (!Array.isArray(raw.choices)) problems.push("'choices' must be a list");
    else checkChoices(raw.choices);
    return problems;
  }
  const allowed = new Set(["low", "high", ...(type === "float" ? ["log"] : []), ...(type === "int" && !grid ? ["step"] : [])]);
  if (!("low" in raw && "high" in raw) || keys.some((k) => !allowed.has(k))) {
    problems.push(`an object needs "low" and "high" (allowed keys: ${[...allowed].sort().join(", ")}) or only "choices"`);
    return problems;
  }
  if (type === "str" || type === "bool") { problems.push("takes a value or a list of choices, not a range"); return problems; }
  const typeErrors = [["low", raw.low], ["high", raw.high]]
    .map(([bound, value]) => [bound, value, typeProblem(type, value)]).filter(([, , bad]) => bad);
  if (typeErrors.length) return typeErrors.map(([bound, value, bad]) => `${bound} ${show(value)} ${bad}`);
  if (raw.low > raw.high) problems.push(`low ${raw.low} is greater than high ${raw.high}`);
  // A range replaces an int/float domain: by default it stays inside it. On a grid it only filters the values.
  else if (!beyondDefaults && domain.kind !== "categorical" && (raw.low < domain.low || raw.high > domain.high)) {
    problems.push(`[${raw.low}, ${raw.high}] is outside the domain: ${describe(domain)}`);
  }
  else if (grid && domain.kind === "categorical" && !domain.choices.some((v) => raw.low <= v && v <= raw.high)) {
    problems.push(`no value of the grid ${show(domain.choices)} lies in [${raw.low}, ${raw.high}]; list the values instead`);
  }
  if ("step" in raw && !(Number.isInteger(raw.step) && raw.step >= 1)) problems.push("step must be a positive integer");
  if ("log" in raw && typeof raw.log !== "boolean") problems.push("log must be true or false");
  if ((raw.log ?? domain.log) === true && raw.low <= 0) problems.push("a log-scale range needs low > 0");
  return problems;
}

// The largest stage count the overrides allow (stage{k}/ keys above it name no stage), or null if unreadable.
function maxStages(overrides, space) {
  const raw = overrides[STAGE_COUNT_ALIAS] ?? overrides.num_stages;
  if (raw === undefined) return space.max_stages;
  const values = Array.isArray(raw) ? raw : raw?.choices ?? (raw !== null && typeof raw === "object" ? [raw.high] : [raw]);
  return Array.isArray(values) && values.length && values.every(Number.isInteger) ? Math.max(...values) : null;
}

/**
 * Problems of `overrides` against the served space, as [{key, error}]; an empty list when they can be sent.
 * `beyondDefaults`: numbers outside the default domains are left to the server's hard limits.
 *
 *   checkOverrides({"kernel": [4]}, space)  →  [{key: "kernel", error: "4 is outside the domain: one of [3,5]"}]
 */
export function checkOverrides(overrides, space, { beyondDefaults = false } = {}) {
  const errors = [];
  const dims = space.dimensions;
  if (STAGE_COUNT_ALIAS in overrides && "num_stages" in overrides) {
    errors.push({ key: STAGE_COUNT_ALIAS, error: "give either 'stage_count' or 'num_stages'" });
  }
  const stages = maxStages(overrides, space);
  for (const [key, raw] of Object.entries(overrides)) {
    let dim = dims[key === STAGE_COUNT_ALIAS ? "num_stages" : key];
    const match = key.match(STAGE_LABEL);
    if (!dim && match && dims[match[2]]?.per_stage) {
      const index = Number(match[1]);
      if (index < 1 || (stages !== null && index > stages)) {
        errors.push({ key, error: `no such stage: num_stages is at most ${stages}` });
        continue;
      }
      dim = dims[match[2]];
    }
    if (!dim) {
      const known = Object.keys(dims).filter((name) => name.replace(/^train\//, "") === key);
      errors.push({ key, error: `unknown search-space dimension${known.length ? ` (did you mean "${known[0]}"?)` : ""}` });
      continue;
    }
    for (const error of valueProblems(dim, raw, { beyondDefaults })) errors.push({ key, error });
  }
  return errors;
}
