/**
 * Topic names and topic ids, as Kafka defines them. A leaf module: the broker's TopicManager, the
 * metadata records' decoder and the controller all check names and ids the same way.
 *
 * - A topic name is 1..249 characters of ASCII alphanumerics, '.', '_' and '-', and not "." or "..".
 *   '.' and '_' collide (both become '_' in metric names), so two topics may not differ only there.
 * - A topic id is a Kafka Uuid written as 32 lowercase hex characters; the zero uuid means "no id".
 */

import { randomBytes } from 'node:crypto';

const TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;
export const TOPIC_NAME_MAX_LENGTH = 249;

/** Kafka's Uuid.ZERO_UUID: "no topic id" on the wire (v0 requests, errors). */
export const ZERO_TOPIC_ID = '00000000000000000000000000000000';

const TOPIC_ID = /^[0-9a-f]{32}$/;
const TOPIC_ID_ATTEMPTS_MAX = 16;

/** Kafka's Topic.validate: returns its message for an illegal name, null for a legal one. */
export function validateTopicName(name: string): string | null {
  if (name.length === 0) return "Topic name is illegal, it can't be empty";
  if (name === '.' || name === '..') return 'Topic name cannot be "." or ".."';
  if (name.length > TOPIC_NAME_MAX_LENGTH)
    return `Topic name is illegal, it can't be longer than ${TOPIC_NAME_MAX_LENGTH} characters`;
  if (!TOPIC_NAME.test(name))
    return `Topic name "${name}" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'`;
  return null;
}

/** Kafka's Topic.unifyCollisionChars: names equal after this collide. */
export function unifyCollisionChars(name: string): string {
  return name.replaceAll('.', '_');
}

/** True for a well-formed, non-zero topic id. */
export function isTopicId(id: string): boolean {
  return TOPIC_ID.test(id) && id !== ZERO_TOPIC_ID;
}

/**
 * A random topic id; never the zero uuid, which Kafka reserves for "no id". `random` (uniform in
 * [0, 1)) makes ids reproducible in simulations; without it the id comes from the system CSPRNG.
 * `taken` rejects ids already in use; a generator that keeps answering taken or zero ids is broken,
 * so after a bounded number of attempts this throws rather than loop.
 */
export function newTopicId(random?: () => number, taken: (id: string) => boolean = () => false): string {
  for (let attempt = 0; attempt < TOPIC_ID_ATTEMPTS_MAX; attempt++) {
    const id = random === undefined ? randomBytes(16).toString('hex') : randomHex(random);
    if (id !== ZERO_TOPIC_ID && !taken(id)) return id;
  }
  throw new Error(`newTopicId: no fresh topic id after ${TOPIC_ID_ATTEMPTS_MAX} attempts`);
}

function randomHex(random: () => number): string {
  let hex = '';
  // Four 4-byte words; 2^32 buckets of a double in [0, 1) keep each word uniform.
  for (let i = 0; i < 4; i++) {
    const word = Math.floor(random() * 0x1_0000_0000) >>> 0;
    hex += word.toString(16).padStart(8, '0');
  }
  return hex;
}
