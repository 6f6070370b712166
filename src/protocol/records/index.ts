/**
 * Record batches (magic 2): the fixed header (batch-header), whole-batch encode/decode
 * (record-batch) and the compression codecs (compression). Import records code from here.
 */
export * from './batch-header.js';
export * from './compression.js';
export * from './record-batch.js';
