/**
 * Generates the Kafka wire codec (src/protocol/generated) from Kafka's JSON message schemas.
 *
 * Input: ../shared/kafka-protocol/message/*.json (requests, responses, headers) and
 * ../shared/kafka-protocol/group-coordinator/*.json (the __consumer_offsets record schemas).
 * Output: one TypeScript file per schema with an interface per struct and an encoder/decoder
 * pair that takes the version as an argument, plus index.ts with the API registry.
 *
 * The output is deterministic, so `test/protocol-generated.test.ts` can regenerate it in memory
 * and fail when the committed files are stale. Run with `npm run generate`.
 */

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface FieldSpec {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  flexibleVersions?: string;
  default?: string | number | boolean | null;
  ignorable?: boolean;
  about?: string;
  fields?: FieldSpec[];
}

interface MessageSpec {
  apiKey?: number;
  type: string;
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: FieldSpec[];
  commonStructs?: { name: string; versions?: string; fields: FieldSpec[] }[];
}

/** An inclusive version range; max Infinity for "N+", empty (min > max) for "none". */
interface Range {
  min: number;
  max: number;
}

function parseRange(s: string | undefined, fallback: Range = { min: 0, max: -1 }): Range {
  if (s === undefined) return fallback;
  const t = s.trim();
  if (t === 'none' || t === '') return { min: 0, max: -1 };
  if (t.endsWith('+')) return { min: Number(t.slice(0, -1)), max: Number.POSITIVE_INFINITY };
  const dash = t.indexOf('-');
  if (dash > 0) return { min: Number(t.slice(0, dash)), max: Number(t.slice(dash + 1)) };
  const n = Number(t);
  return { min: n, max: n };
}

function isEmpty(r: Range): boolean {
  return r.min > r.max;
}

/** The TS condition "version is in r", simplified against the message's valid range. */
function cond(r: Range, valid: Range, v = 'version'): string {
  if (isEmpty(r)) return 'false';
  const lo = r.min > valid.min;
  const hi = r.max < valid.max;
  if (lo && hi) return r.min === r.max ? `${v} === ${r.min}` : `${v} >= ${r.min} && ${v} <= ${r.max}`;
  if (lo) return `${v} >= ${r.min}`;
  if (hi) return `${v} <= ${r.max}`;
  return 'true';
}

function intersects(a: Range, b: Range): boolean {
  return Math.max(a.min, b.min) <= Math.min(a.max, b.max);
}

function camel(name: string): string {
  // Kafka names are PascalCase with acronyms kept upper-case at the start ("ISRs" is rare).
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*\/\//.test(l))
    .join('\n');
}

const PRIMITIVES = new Set([
  'bool',
  'int8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'float64',
  'string',
  'bytes',
  'records',
  'uuid',
]);

/** Minimum wire bytes of one array element, used to bound array counts before allocating. */
const MIN_ELEMENT_BYTES: Record<string, number> = {
  bool: 1,
  int8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  float64: 8,
  uuid: 16,
  string: 1,
  bytes: 1,
  records: 1,
};

function tsPrimitive(type: string): string {
  switch (type) {
    case 'bool':
      return 'boolean';
    case 'string':
    case 'uuid':
      return 'string';
    case 'bytes':
    case 'records':
      return 'Buffer';
    default:
      return 'number';
  }
}

interface StructDef {
  name: string;
  fields: FieldSpec[];
}

class Generator {
  private readonly structs: StructDef[] = [];
  private readonly structNames = new Set<string>();
  private readonly common = new Map<string, FieldSpec[]>();
  private readonly valid: Range;
  private readonly flexible: Range;

  constructor(private readonly spec: MessageSpec) {
    this.valid = parseRange(spec.validVersions);
    this.flexible = parseRange(spec.flexibleVersions);
    for (const cs of spec.commonStructs ?? []) this.common.set(cs.name, cs.fields);
    this.collect(spec.name, spec.fields);
  }

  private collect(name: string, fields: FieldSpec[]): void {
    if (this.structNames.has(name)) return;
    this.structNames.add(name);
    this.structs.push({ name, fields });
    for (const f of fields) {
      const elem = f.type.startsWith('[]') ? f.type.slice(2) : f.type;
      if (PRIMITIVES.has(elem)) continue;
      const sub = f.fields ?? this.common.get(elem);
      if (!sub) throw new Error(`${this.spec.name}: unknown type ${elem} of field ${f.name}`);
      this.collect(elem, sub);
    }
  }

  private fieldRange(f: FieldSpec): Range {
    return parseRange(f.versions, { min: 0, max: -1 });
  }

  private nullableAny(f: FieldSpec): boolean {
    return !isEmpty(parseRange(f.nullableVersions));
  }

  private tsType(f: FieldSpec): string {
    const nullable = this.nullableAny(f) ? ' | null' : '';
    if (f.type.startsWith('[]')) {
      const elem = f.type.slice(2);
      const t = PRIMITIVES.has(elem) ? tsPrimitive(elem) : elem;
      return `${t}[]${nullable}`;
    }
    if (PRIMITIVES.has(f.type)) {
      return `${tsPrimitive(f.type)}${f.type === 'records' ? ' | null' : nullable}`;
    }
    return `${f.type}${nullable}`;
  }

  /** TS expression for a field's default value. */
  private defaultExpr(f: FieldSpec): string {
    const d = f.default;
    // Kafka's schemas spell a null default both as the string "null" and as JSON null.
    const nullDefault = d === 'null' || d === null;
    if (f.type.startsWith('[]')) return nullDefault ? 'null' : '[]';
    switch (f.type) {
      case 'bool':
        return d === true || d === 'true' ? 'true' : 'false';
      case 'int8':
      case 'int16':
      case 'uint16':
      case 'int32':
      case 'uint32':
      case 'int64':
      case 'float64': {
        if (d === undefined || d === '') return '0';
        const n = typeof d === 'number' ? d : Number(String(d));
        if (Number.isNaN(n)) throw new Error(`${this.spec.name}.${f.name}: bad default ${d}`);
        return String(n);
      }
      case 'string':
        if (nullDefault) return 'null';
        return JSON.stringify(d === undefined ? '' : String(d));
      case 'uuid':
        return 'ZERO_UUID';
      case 'bytes':
        return nullDefault ? 'null' : 'EMPTY_BUFFER';
      case 'records':
        return 'null';
      default:
        return nullDefault ? 'null' : `default${f.type}()`;
    }
  }

  /** Whether field `f` uses the compact (flexible) encoding in this context. */
  private flexExpr(f: FieldSpec): string {
    if (f.flexibleVersions !== undefined) return cond(parseRange(f.flexibleVersions), this.valid);
    return 'flexible';
  }

  private writeValue(
    f: FieldSpec,
    type: string,
    expr: string,
    flex: string,
    nullCond: string,
    ind: string,
  ): string[] {
    const out: string[] = [];
    const nullable = nullCond !== 'false';
    if (type.startsWith('[]')) {
      const elem = type.slice(2);
      const lenWrite = (n: string) =>
        flex === 'true'
          ? `w.uvarint(${n} + 1);`
          : flex === 'false'
            ? `w.int32(${n});`
            : `if (${flex}) w.uvarint(${n} + 1); else w.int32(${n});`;
      const nullWrite =
        flex === 'true'
          ? 'w.uvarint(0);'
          : flex === 'false'
            ? 'w.int32(-1);'
            : `if (${flex}) w.uvarint(0); else w.int32(-1);`;
      // A missing (undefined) array is written as the field's default: [] unless the schema's
      // default is null and null is allowed in this version.
      const arrDefault = this.defaultExpr(f) === 'null' && nullable ? `((${nullCond}) ? null : [])` : '[]';
      out.push(`${ind}{`);
      out.push(`${ind}  const arr = ${expr} !== undefined ? ${expr} : ${arrDefault};`);
      out.push(`${ind}  if (arr === null) {`);
      if (nullable)
        out.push(
          `${ind}    if (!(${nullCond})) throw new EncodeError('${f.name} is not nullable in version ' + version);`,
        );
      out.push(`${ind}    ${nullable ? nullWrite : lenWrite('0')}`);
      out.push(`${ind}  } else {`);
      out.push(`${ind}    ${lenWrite('arr.length')}`);
      out.push(`${ind}    for (const el of arr) {`);
      out.push(...this.writeValue(f, elem, 'el', flex, 'false', `${ind}      `));
      out.push(`${ind}    }`);
      out.push(`${ind}  }`);
      out.push(`${ind}}`);
      return out;
    }
    const pick = (compact: string, classic: string) =>
      flex === 'true' ? compact : flex === 'false' ? classic : `(${flex} ? ${compact} : ${classic})`;
    // Array elements (type !== f.type) have no default of their own; a field's missing value
    // is written as the schema's default for that field.
    const isElem = type !== f.type;
    const fieldDefault = isElem ? undefined : this.defaultExpr(f);
    switch (type) {
      case 'bool':
        out.push(`${ind}w.bool(${expr} ?? ${fieldDefault ?? 'false'});`);
        break;
      case 'int8':
      case 'int16':
      case 'uint16':
      case 'int32':
      case 'uint32':
      case 'int64':
      case 'float64':
        out.push(
          `${ind}w.${type}(${expr} ?? ${fieldDefault === undefined || fieldDefault === 'null' ? '0' : fieldDefault});`,
        );
        break;
      case 'uuid':
        out.push(`${ind}w.uuid(${expr} ?? ZERO_UUID);`);
        break;
      case 'string':
      case 'bytes':
      case 'records': {
        const cap = type === 'string' ? 'String' : 'Bytes';
        const plainFallback = type === 'string' ? "''" : 'EMPTY_BUFFER';
        // Where null is not allowed, a missing or null value becomes the default (or ''/empty).
        const fallback = fieldDefault === undefined || fieldDefault === 'null' ? plainFallback : fieldDefault;
        if (nullable || type === 'records') {
          const nc = type === 'records' ? 'true' : nullCond;
          // Where null is allowed, only a missing value becomes the default (which may be null).
          const nullableVal =
            fieldDefault === undefined || fieldDefault === 'null'
              ? `${expr} ?? null`
              : `${expr} === undefined ? ${fieldDefault} : ${expr}`;
          const val = nc === 'true' ? nullableVal : `(${nc}) ? (${nullableVal}) : (${expr} ?? ${fallback})`;
          if (flex === 'true' || flex === 'false') {
            const fn = flex === 'true' ? `compactNullable${cap}` : `nullable${cap}`;
            out.push(`${ind}w.${fn}(${val});`);
          } else {
            out.push(`${ind}{`);
            out.push(`${ind}  const val = ${val};`);
            out.push(`${ind}  if (${flex}) w.compactNullable${cap}(val); else w.nullable${cap}(val);`);
            out.push(`${ind}}`);
          }
        } else {
          const v = `(${expr} ?? ${fallback})`;
          if (flex === 'true') out.push(`${ind}w.compact${cap}(${v});`);
          else if (flex === 'false') out.push(`${ind}w.${type === 'string' ? 'string' : 'bytes'}(${v});`);
          else
            out.push(
              `${ind}if (${flex}) w.compact${cap}(${v}); else w.${type === 'string' ? 'string' : 'bytes'}(${v});`,
            );
        }
        break;
      }
      default: {
        // A struct. Nullable structs carry an int8 presence marker (-1 null, 1 present). A missing
        // value is the default: null if the schema says so and null is allowed here, else {}.
        if (nullable) {
          const structDefault = fieldDefault === 'null' ? `((${nullCond}) ? null : {})` : '{}';
          out.push(`${ind}{`);
          out.push(`${ind}  const sv = ${expr} !== undefined ? ${expr} : ${structDefault};`);
          out.push(`${ind}  if (sv === null) {`);
          out.push(
            `${ind}    if (!(${nullCond})) throw new EncodeError('${f.name} is not nullable in version ' + version);`,
          );
          out.push(`${ind}    w.int8(-1);`);
          out.push(`${ind}  } else {`);
          out.push(`${ind}    if (${nullCond}) w.int8(1);`);
          out.push(`${ind}    encode${type}(w, sv, version);`);
          out.push(`${ind}  }`);
          out.push(`${ind}}`);
        } else {
          out.push(`${ind}encode${type}(w, ${expr} ?? {}, version);`);
        }
        void pick;
      }
    }
    return out;
  }

  private readValue(f: FieldSpec, type: string, flex: string, nullCond: string): string {
    const nullable = nullCond !== 'false';
    if (type.startsWith('[]')) {
      const elem = type.slice(2);
      const minBytes = MIN_ELEMENT_BYTES[elem] ?? 1;
      const len =
        flex === 'true'
          ? `r.compactArrayLength(${minBytes})`
          : flex === 'false'
            ? `r.arrayLength(${minBytes})`
            : `(${flex} ? r.compactArrayLength(${minBytes}) : r.arrayLength(${minBytes}))`;
      const elemRead = this.readValue(f, elem, flex, 'false');
      const nullCheck = nullable
        ? `if (n < 0) { if (!(${nullCond})) throw new DecodeError('${f.name} is not nullable in version ' + version); return null; }`
        : `if (n < 0) throw new DecodeError('${f.name} is not nullable in version ' + version);`;
      return `((): ${this.tsType({ ...f, type, nullableVersions: nullable ? '0+' : undefined })} => { const n = ${len}; ${nullCheck} const a = new Array(n); for (let i = 0; i < n; i++) a[i] = ${elemRead}; return a; })()`;
    }
    const pick = (compact: string, classic: string) =>
      flex === 'true' ? compact : flex === 'false' ? classic : `(${flex} ? ${compact} : ${classic})`;
    switch (type) {
      case 'bool':
      case 'int8':
      case 'int16':
      case 'uint16':
      case 'int32':
      case 'uint32':
      case 'int64':
      case 'float64':
      case 'uuid':
        return `r.${type}()`;
      case 'string':
      case 'bytes':
      case 'records': {
        const cap = type === 'string' ? 'String' : 'Bytes';
        const classic = type === 'string' ? 'string' : 'bytes';
        if (type === 'records') return pick('r.compactNullableBytes()', 'r.nullableBytes()');
        if (nullable) {
          if (nullCond === 'true') return pick(`r.compactNullable${cap}()`, `r.nullable${cap}()`);
          return `((${nullCond}) ? ${pick(`r.compactNullable${cap}()`, `r.nullable${cap}()`)} : ${pick(`r.compact${cap}()`, `r.${classic}()`)})`;
        }
        return pick(`r.compact${cap}()`, `r.${classic}()`);
      }
      default:
        if (nullable) {
          return `((${nullCond}) && r.int8() < 0 ? null : decode${type}(r, version))`;
        }
        return `decode${type}(r, version)`;
    }
  }

  private emitStruct(s: StructDef, isRoot: boolean): string[] {
    const out: string[] = [];
    const fields = s.fields.filter((f) => intersects(this.fieldRange(f), this.valid));
    // Interface
    out.push(`export interface ${s.name} {`);
    for (const f of fields) {
      if (f.about) out.push(`  /** ${f.about.replace(/\*\//g, '* /')} */`);
      out.push(`  ${camel(f.name)}: ${this.tsType(f)};`);
    }
    out.push('  /** Tagged fields this codec does not know, kept for re-encoding. */');
    out.push('  unknownTaggedFields?: RawTaggedField[];');
    out.push('}');
    out.push('');
    // Default
    out.push(`export function default${s.name}(): ${s.name} {`);
    out.push('  return {');
    for (const f of fields) out.push(`    ${camel(f.name)}: ${this.defaultExpr(f)},`);
    out.push('  };');
    out.push('}');
    out.push('');
    // Encoder
    const tagged = fields
      .filter((f) => f.tag !== undefined && !isEmpty(parseRange(f.taggedVersions)))
      .sort((a, b) => a.tag! - b.tag!);
    const plain = fields.filter((f) => !(f.tag !== undefined && !isEmpty(parseRange(f.taggedVersions))));
    const flexCond = cond(this.flexible, this.valid);
    out.push(
      `${isRoot ? 'export ' : ''}function encode${s.name}(w: Writer, v: Encodable<${s.name}>, version: number): void {`,
    );
    out.push(`  const flexible = ${flexCond};`);
    out.push('  void flexible;');
    for (const f of plain) {
      const r = this.fieldRange(f);
      const c = cond(r, this.valid);
      const nullCond = this.nullableAny(f) ? cond(parseRange(f.nullableVersions), this.valid) : 'false';
      const lines = this.writeValue(f, f.type, `v.${camel(f.name)}`, this.flexExpr(f), nullCond, '    ');
      if (c === 'true') out.push(...lines.map((l) => l.slice(2)));
      else {
        out.push(`  if (${c}) {`);
        out.push(...lines);
        out.push('  }');
      }
    }
    out.push('  if (flexible) {');
    out.push('    const tagged: RawTaggedField[] = v.unknownTaggedFields ? [...v.unknownTaggedFields] : [];');
    for (const f of tagged) {
      const tr = parseRange(f.taggedVersions);
      const c = cond(tr, this.valid);
      const nullCond = this.nullableAny(f) ? cond(parseRange(f.nullableVersions), this.valid) : 'false';
      const key = camel(f.name);
      const def = this.defaultExpr(f);
      // Written only when the value differs from the default the decoder would fill in.
      const nullableTag = nullCond !== 'false';
      let differs: string;
      if (f.type.startsWith('[]') || f.type === 'bytes' || f.type === 'records') {
        if (def === 'null') differs = `v.${key} != null`;
        else if (nullableTag)
          differs = `v.${key} !== undefined && (v.${key} === null || v.${key}.length > 0)`;
        else differs = `v.${key} != null && v.${key}.length > 0`;
      } else if (PRIMITIVES.has(f.type)) {
        differs = `v.${key} !== undefined && v.${key} !== ${def}`;
      } else differs = def !== 'null' && nullableTag ? `v.${key} !== undefined` : `v.${key} != null`;
      out.push(`    if ((${c}) && ${differs}) {`);
      out.push('      const tw = new Writer(64);');
      out.push('      { const w = tw;');
      out.push(...this.writeValue(f, f.type, `v.${key}`, 'true', nullCond, '        '));
      out.push('      }');
      out.push(`      tagged.push({ tag: ${f.tag}, data: tw.view() });`);
      out.push('    }');
    }
    out.push('    writeTaggedFields(w, tagged);');
    out.push('  }');
    out.push('}');
    out.push('');
    // Decoder
    out.push(`${isRoot ? 'export ' : ''}function decode${s.name}(r: Reader, version: number): ${s.name} {`);
    out.push(`  const flexible = ${flexCond};`);
    out.push('  void flexible;');
    out.push(`  const out = default${s.name}();`);
    for (const f of plain) {
      const c = cond(this.fieldRange(f), this.valid);
      const nullCond = this.nullableAny(f) ? cond(parseRange(f.nullableVersions), this.valid) : 'false';
      const expr = this.readValue(f, f.type, this.flexExpr(f), nullCond);
      if (c === 'true') out.push(`  out.${camel(f.name)} = ${expr};`);
      else out.push(`  if (${c}) out.${camel(f.name)} = ${expr};`);
    }
    out.push('  if (flexible) {');
    if (tagged.length === 0) {
      out.push('    const unknown = r.taggedFields();');
    } else {
      out.push('    const unknown = r.taggedFields((tag) => {');
      out.push('      switch (tag) {');
      for (const f of tagged) {
        const c = cond(parseRange(f.taggedVersions), this.valid);
        const nullCond = this.nullableAny(f) ? cond(parseRange(f.nullableVersions), this.valid) : 'false';
        out.push(`        case ${f.tag}:`);
        out.push(`          if (!(${c})) return false;`);
        out.push(`          out.${camel(f.name)} = ${this.readValue(f, f.type, 'true', nullCond)};`);
        out.push('          return true;');
      }
      out.push('        default:');
      out.push('          return false;');
      out.push('      }');
      out.push('    });');
    }
    out.push('    if (unknown) out.unknownTaggedFields = unknown;');
    out.push('  }');
    out.push('  return out;');
    out.push('}');
    out.push('');
    return out;
  }

  /** A compact description of the schema, for property tests and fuzzers that need field types. */
  descriptor(): unknown {
    const r = (x: Range) => [x.min, Number.isFinite(x.max) ? x.max : 32767];
    const structs: Record<string, unknown[]> = {};
    for (const s of this.structs) {
      structs[s.name] = s.fields
        .filter((f) => intersects(this.fieldRange(f), this.valid))
        .map((f) => {
          const d: Record<string, unknown> = {
            name: camel(f.name),
            type: f.type,
            versions: r(this.fieldRange(f)),
          };
          if (this.nullableAny(f)) d.nullable = r(parseRange(f.nullableVersions));
          if (f.tag !== undefined && !isEmpty(parseRange(f.taggedVersions))) {
            d.tagged = r(parseRange(f.taggedVersions));
            d.tag = Number(f.tag);
          }
          if (f.flexibleVersions !== undefined) d.flexible = r(parseRange(f.flexibleVersions));
          return d;
        });
    }
    return {
      name: this.spec.name,
      type: this.spec.type,
      apiKey: this.spec.apiKey ?? -1,
      valid: r(this.valid),
      flexibleMin: isEmpty(this.flexible) ? -1 : this.flexible.min,
      structs,
    };
  }

  emit(sourceFile: string): string {
    const out: string[] = [];
    out.push('// GENERATED FILE — do not edit.');
    out.push(`// Generated by scripts/generate-protocol.ts from ${sourceFile}`);
    out.push('// (Apache Kafka protocol schemas, Apache License 2.0). Regenerate with `npm run generate`.');
    out.push('/* eslint-disable */');
    out.push('');
    out.push("import { DecodeError, type RawTaggedField, type Reader, Writer } from '../primitives.js';");
    out.push(
      "import { EMPTY_BUFFER, type Encodable, EncodeError, writeTaggedFields, ZERO_UUID } from '../codec-support.js';",
    );
    out.push('');
    out.push('void DecodeError;');
    out.push('void EMPTY_BUFFER;');
    out.push('void ZERO_UUID;');
    out.push('void EncodeError;');
    out.push('');
    const valid = this.valid;
    out.push(
      `export const ${this.spec.name}Versions = { min: ${valid.min}, max: ${valid.max}, flexibleMin: ${isEmpty(this.flexible) ? -1 : this.flexible.min} } as const;`,
    );
    out.push('');
    this.structs.forEach((s, i) => {
      out.push(...this.emitStruct(s, true || i === 0));
    });
    return `${out.join('\n')}\n`;
  }
}

export interface GeneratedFile {
  path: string;
  content: string;
}

const here = dirname(fileURLToPath(import.meta.url));
export const defaultSpecDir = resolve(here, '..', '..', 'shared', 'kafka-protocol');
export const defaultOutDir = resolve(here, '..', 'src', 'protocol', 'generated');

/** Generates every file in memory (used by the generator and by the staleness test). */
export function generateAll(specDir = defaultSpecDir): GeneratedFile[] {
  const files: GeneratedFile[] = [];
  const apis = new Map<number, { name: string; request?: MessageSpec; response?: MessageSpec }>();
  const records: string[] = [];
  const descriptors: unknown[] = [];
  for (const sub of ['message', 'group-coordinator']) {
    const dir = join(specDir, sub);
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).sort()) {
      if (!file.endsWith('.json')) continue;
      const spec = JSON.parse(stripComments(readFileSync(join(dir, file), 'utf8'))) as MessageSpec;
      const gen = new Generator(spec);
      const module = kebab(spec.name);
      files.push({ path: `${module}.ts`, content: gen.emit(`kafka-protocol/${sub}/${file}`) });
      descriptors.push({ module, ...(gen.descriptor() as object) });
      if (spec.type === 'request' || spec.type === 'response') {
        const key = spec.apiKey!;
        const base = spec.name.replace(/(Request|Response)$/, '');
        const entry = apis.get(key) ?? { name: base };
        if (spec.type === 'request') entry.request = spec;
        else entry.response = spec;
        apis.set(key, entry);
      } else if (sub === 'group-coordinator' || spec.type === 'data') {
        records.push(spec.name);
      }
    }
  }
  // Index: API keys, the registry, re-exports.
  const idx: string[] = [];
  idx.push('// GENERATED FILE — do not edit.');
  idx.push(
    '// Generated by scripts/generate-protocol.ts from kafka-protocol/message/*.json. Regenerate with `npm run generate`.',
  );
  idx.push('');
  idx.push("import type { Reader, Writer } from '../primitives.js';");
  idx.push("import type { Encodable } from '../codec-support.js';");
  const keys = [...apis.keys()].sort((a, b) => a - b);
  for (const k of keys) {
    const a = apis.get(k)!;
    if (!a.request || !a.response) continue;
    idx.push(
      `import { decode${a.name}Request, encode${a.name}Request, ${a.name}RequestVersions, type ${a.name}Request } from './${kebab(a.request.name)}.js';`,
    );
    idx.push(
      `import { decode${a.name}Response, encode${a.name}Response, type ${a.name}Response } from './${kebab(a.response.name)}.js';`,
    );
  }
  idx.push('');
  idx.push('export enum ApiKey {');
  for (const k of keys) idx.push(`  ${apis.get(k)!.name} = ${k},`);
  idx.push('}');
  idx.push('');
  idx.push('/** Request/response codecs of one API, for every version the schema lists. */');
  idx.push('export interface ApiCodec<Req, Res> {');
  idx.push('  apiKey: ApiKey;');
  idx.push('  name: string;');
  idx.push('  minVersion: number;');
  idx.push('  maxVersion: number;');
  idx.push('  /** First flexible version (compact encodings, tagged fields, header v2/v1), -1 if none. */');
  idx.push('  flexibleMin: number;');
  idx.push('  decodeRequest(r: Reader, version: number): Req;');
  idx.push('  encodeRequest(w: Writer, v: Encodable<Req>, version: number): void;');
  idx.push('  decodeResponse(r: Reader, version: number): Res;');
  idx.push('  encodeResponse(w: Writer, v: Encodable<Res>, version: number): void;');
  idx.push('}');
  idx.push('');
  idx.push('export interface ApiTypes {');
  for (const k of keys) {
    const a = apis.get(k)!;
    if (!a.request || !a.response) continue;
    idx.push(`  ${k}: [${a.name}Request, ${a.name}Response];`);
  }
  idx.push('}');
  idx.push('');
  idx.push('export const apiCodecs: { [K in keyof ApiTypes]: ApiCodec<ApiTypes[K][0], ApiTypes[K][1]> } = {');
  for (const k of keys) {
    const a = apis.get(k)!;
    if (!a.request || !a.response) continue;
    idx.push(`  ${k}: {`);
    idx.push(`    apiKey: ${k},`);
    idx.push(`    name: '${a.name}',`);
    idx.push(`    minVersion: ${a.name}RequestVersions.min,`);
    idx.push(`    maxVersion: ${a.name}RequestVersions.max,`);
    idx.push(`    flexibleMin: ${a.name}RequestVersions.flexibleMin,`);
    idx.push(`    decodeRequest: decode${a.name}Request,`);
    idx.push(`    encodeRequest: encode${a.name}Request,`);
    idx.push(`    decodeResponse: decode${a.name}Response,`);
    idx.push(`    encodeResponse: encode${a.name}Response,`);
    idx.push('  },');
  }
  idx.push('};');
  idx.push('');
  files.push({ path: 'index.ts', content: `${idx.join('\n')}\n` });
  const desc: string[] = [];
  desc.push('// GENERATED FILE — do not edit.');
  desc.push(
    '// Generated by scripts/generate-protocol.ts from kafka-protocol/*/*.json. Regenerate with `npm run generate`.',
  );
  desc.push(
    '// Field types per schema, for property tests and fuzzers: [min, max] version ranges, 32767 = open.',
  );
  desc.push('');
  desc.push("import type { SchemaDescriptor } from '../codec-support.js';");
  desc.push('');
  desc.push('export const schemaDescriptors: SchemaDescriptor[] = [');
  for (const d of descriptors) desc.push(`  ${JSON.stringify(d)},`);
  desc.push('];');
  files.push({ path: 'descriptors.ts', content: `${desc.join('\n')}\n` });
  void records;
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

function main(): void {
  const specDir = process.argv[2] ? resolve(process.argv[2]) : defaultSpecDir;
  if (!existsSync(join(specDir, 'message'))) {
    console.error(
      `no Kafka schemas at ${specDir}/message — pass the kafka-protocol folder as the first argument`,
    );
    process.exit(1);
  }
  const files = generateAll(specDir);
  rmSync(defaultOutDir, { recursive: true, force: true });
  mkdirSync(defaultOutDir, { recursive: true });
  for (const f of files) writeFileSync(join(defaultOutDir, f.path), f.content);
  console.log(`wrote ${files.length} files to ${defaultOutDir}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
