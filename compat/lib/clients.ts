/**
 * The client programs the runner drives: how each is installed or built (cached under
 * compat/.cache) and the command that runs one scenario.
 */

import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, COMPAT_DIR, REPO_ROOT, progress, run } from './util.js';

export interface ClientDef {
  id: string;
  /** Column heading in docs/compatibility.md. */
  label: string;
  /** `--clients java` selects every client of the family. */
  family: string;
  /** Part of the default set. */
  default: boolean;
  setup(): Promise<void>;
  command(args: string[]): [string, string[]];
  version(): string;
}

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let n = 0;
  for (const e of readdirSync(p)) n = Math.max(n, newestMtime(join(p, e)));
  return n;
}

function kafkajsVersion(): string {
  try {
    return (
      JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'kafkajs', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return '?';
  }
}

const kafkajs: ClientDef = {
  id: 'kafkajs',
  label: `kafkajs ${kafkajsVersion()}`,
  family: 'kafkajs',
  default: true,
  async setup() {
    if (existsSync(join(REPO_ROOT, 'node_modules', 'kafkajs', 'package.json'))) return;
    progress('installing npm dev dependencies (kafkajs)');
    const r = await run('npm', ['install', '--no-audit', '--no-fund'], {
      cwd: REPO_ROOT,
      timeoutMs: 600_000,
    });
    if (r.code !== 0) throw new Error(`npm install failed: ${r.stderr.slice(-1500)}`);
  },
  command: (args) => [
    process.execPath,
    ['--import', 'tsx', join(COMPAT_DIR, 'clients', 'kafkajs.ts'), ...args],
  ],
  version: kafkajsVersion,
};

function javaClient(version: string, isDefault: boolean): ClientDef {
  const buildDir = join(CACHE_DIR, `java-${version}`);
  const jar = join(buildDir, 'sluice-compat-java-jar-with-dependencies.jar');
  const src = join(COMPAT_DIR, 'clients', 'java');
  return {
    id: `java-${version}`,
    label: `Java kafka-clients ${version}`,
    family: 'java',
    default: isDefault,
    async setup() {
      const fresh =
        existsSync(jar) &&
        statSync(jar).mtimeMs >
          Math.max(newestMtime(join(src, 'src')), statSync(join(src, 'pom.xml')).mtimeMs);
      if (fresh) return;
      progress(`building the Java client against kafka-clients ${version} (mvn package)`);
      const r = await run(
        'mvn',
        ['-q', '-B', 'package', `-Dkafka.version=${version}`, `-DbuildDir=${buildDir}`],
        { cwd: src, timeoutMs: 900_000 },
      );
      if (r.code !== 0 || !existsSync(jar))
        throw new Error(
          `mvn package (kafka-clients ${version}) failed:\n${(r.stdout + r.stderr).slice(-1500)}`,
        );
    },
    command: (args) => ['java', ['-jar', jar, ...args]],
    version: () => version,
  };
}

let kcatVersionCache = '';
const kcat: ClientDef = {
  id: 'kcat',
  get label() {
    return kcatVersionCache || 'kcat (librdkafka)';
  },
  family: 'kcat',
  default: true,
  async setup() {
    let v = await run('bash', ['-c', 'command -v kcat && kcat -V'], {});
    if (v.code !== 0) {
      progress('installing kcat (apt-get install -y kcat)');
      const r = await run(
        'bash',
        ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat'],
        { timeoutMs: 600_000 },
      );
      if (r.code !== 0) throw new Error(`apt-get install kcat failed: ${r.stderr.slice(-800)}`);
      v = await run('bash', ['-c', 'kcat -V'], {});
    }
    const m = /kcat[^\n]*\n[^\n]*\n[^\n]*\n*Version ([^\s]+).*librdkafka ([0-9.]+)/s.exec(
      v.stdout + v.stderr,
    );
    kcatVersionCache = m ? `kcat ${m[1]}, librdkafka ${m[2]}` : 'kcat';
    const py = await run('bash', ['-c', 'command -v python3'], {});
    if (py.code !== 0) throw new Error('compat/clients/kcat.sh needs python3');
  },
  command: (args) => ['bash', [join(COMPAT_DIR, 'clients', 'kcat.sh'), ...args]],
  version: () => kcatVersionCache,
};

const franzDir = join(COMPAT_DIR, 'clients', 'franz-go');
const franzBin = join(CACHE_DIR, 'franz-go', 'client');
function goModVersion(): string {
  try {
    return (
      /github\.com\/twmb\/franz-go (v[\d.]+)/.exec(readFileSync(join(franzDir, 'go.mod'), 'utf8'))?.[1] ?? '?'
    );
  } catch {
    return '?';
  }
}
const franzGo: ClientDef = {
  id: 'franz-go',
  label: `franz-go ${goModVersion()}`,
  family: 'franz-go',
  default: true,
  async setup() {
    const fresh =
      existsSync(franzBin) &&
      statSync(franzBin).mtimeMs >
        Math.max(
          ...['main.go', 'go.mod', 'go.sum']
            .filter((f) => existsSync(join(franzDir, f)))
            .map((f) => statSync(join(franzDir, f)).mtimeMs),
        );
    if (fresh) return;
    progress('building the franz-go client (go build; modules from the Go proxy, cached)');
    const r = await run('go', ['build', '-o', franzBin, '.'], {
      cwd: franzDir,
      timeoutMs: 900_000,
      env: { ...process.env, GOFLAGS: '-mod=mod' },
    });
    if (r.code !== 0 || !existsSync(franzBin))
      throw new Error(`go build failed:\n${(r.stdout + r.stderr).slice(-1500)}`);
  },
  command: (args) => [franzBin, args],
  version: goModVersion,
};

const venv = join(CACHE_DIR, 'venv');
const pyReq = join(COMPAT_DIR, 'clients', 'python', 'requirements.txt');
function pyPinned(): string {
  try {
    return /confluent-kafka==([\w.]+)/.exec(readFileSync(pyReq, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}
let pyVersions = '';
const python: ClientDef = {
  id: 'python',
  get label() {
    return `confluent-kafka-python ${pyVersions || pyPinned()}`;
  },
  family: 'python',
  default: true,
  async setup() {
    const marker = join(venv, '.installed');
    const want = readFileSync(pyReq, 'utf8');
    if (!existsSync(marker) || readFileSync(marker, 'utf8') !== want) {
      progress('installing confluent-kafka (python3 -m venv compat/.cache/venv; pip install from PyPI)');
      let r = await run('python3', ['-m', 'venv', venv], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`python3 -m venv failed: ${r.stderr.slice(-800)}`);
      r = await run(join(venv, 'bin', 'pip'), ['install', '-q', '-r', pyReq], { timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`pip install failed: ${r.stderr.slice(-800)}`);
      writeFileSync(marker, want);
    }
    const v = await run(
      join(venv, 'bin', 'python'),
      [
        '-c',
        'import confluent_kafka as c; v = c.version(); print(v[0] if isinstance(v, tuple) else v, c.libversion()[0])',
      ],
      { timeoutMs: 60_000 },
    );
    const [py, lib] = v.stdout.trim().split(' ');
    pyVersions = py ? `${py} (librdkafka ${lib})` : '';
  },
  command: (args) => [
    join(venv, 'bin', 'python'),
    [join(COMPAT_DIR, 'clients', 'python', 'client.py'), ...args],
  ],
  version: () => pyVersions,
};

export const CLIENTS: ClientDef[] = [
  kafkajs,
  javaClient('4.4.0', true),
  javaClient('3.9.1', true),
  kcat,
  franzGo,
  python,
];

/** Lets later additions (franz-go, Python) register themselves. */
export function addClient(c: ClientDef): void {
  CLIENTS.push(c);
}
