/** The backup bucket's layout and the names of periods and baselines: pure, no bucket needed. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  PARTS,
  PERIODS,
  SCHEDULED_PERIODS,
  backupPrefix,
  baselinePrefix,
  formatBaselineRef,
  isBaselineName,
  isPeriod,
  isScheduledPeriod,
  parseBaselineRef,
  parseBaselineSpec,
} from '../src/index.ts';

const layout = suite('layout');

layout("a site's backups have a database part and a webroot part", () => {
  assert.equal([...PARTS], ['database', 'webroot']);
});

layout('temporal backups of a part are under the part', () => {
  assert.is(backupPrefix('database'), 'database/');
  assert.is(backupPrefix('webroot'), 'webroot/');
});

layout('a baseline is under baselines/<name>/, each of its parts under its own', () => {
  assert.is(baselinePrefix('starter'), 'baselines/starter/');
  assert.is(baselinePrefix('starter', 'database'), 'baselines/starter/database/');
  assert.is(baselinePrefix('starter', 'webroot'), 'baselines/starter/webroot/');
});

// ---

const periods = suite('periods');

periods('every period, scheduled ones first, then manual and shutdown', () => {
  assert.equal([...PERIODS], ['hourly', 'daily', 'weekly', 'monthly', 'bimonthly', 'manual', 'shutdown']);
  assert.equal([...SCHEDULED_PERIODS], ['hourly', 'daily', 'weekly', 'monthly', 'bimonthly']);
});

periods('manual and shutdown are periods but never scheduled', () => {
  for (const p of ['manual', 'shutdown']) {
    assert.ok(isPeriod(p), p);
    assert.not.ok(isScheduledPeriod(p), p);
  }
  for (const p of SCHEDULED_PERIODS) assert.ok(isPeriod(p) && isScheduledPeriod(p), p);
});

periods('anything else is not a period', () => {
  for (const p of ['', 'yearly', 'Daily', 'daily ', 'latest']) {
    assert.not.ok(isPeriod(p), p);
    assert.not.ok(isScheduledPeriod(p), p);
  }
});

// ---

const names = suite('baseline names');

names('a name is 1-64 lowercase letters, digits or hyphens, not starting or ending with a hyphen', () => {
  for (const n of ['a', 'starter', 'shop-2', '0', 'a'.repeat(64)]) assert.ok(isBaselineName(n), n);
  for (const n of ['', '-a', 'a-', 'Shop', 'a_b', 'a.b', 'a/b', 'a'.repeat(65)]) assert.not.ok(isBaselineName(n), n);
});

names('NAME is a baseline of this site; BUCKET/NAME one of another bucket', () => {
  assert.equal(parseBaselineRef('starter'), { name: 'starter' });
  assert.equal(parseBaselineRef('adt-backups-other.example/starter'), { bucket: 'adt-backups-other.example', name: 'starter' });
});

names('anything else is refused', () => {
  for (const r of ['', 'Starter', 'a/b/c', '/starter', 'starter/', 'ab/starter', 'bucket/-x', 'baseline:starter'])
    assert.is(parseBaselineRef(r), null, r);
});

names('RESTORE_FROM names a baseline as baseline:NAME or baseline:BUCKET/NAME', () => {
  assert.equal(parseBaselineSpec('baseline:starter'), { name: 'starter' });
  assert.equal(parseBaselineSpec('baseline:other-site-backups/shop'), { bucket: 'other-site-backups', name: 'shop' });
  for (const s of ['starter', 'latest', 'daily', 'baseline:', 'baseline:Shop', 'baseline:a/b/c', 'Baseline:starter'])
    assert.is(parseBaselineSpec(s), null, s);
});

names('a parsed baseline is written back as Restore --baseline takes it', () => {
  for (const text of ['starter', 'other-site-backups/shop']) assert.is(formatBaselineRef(parseBaselineRef(text)!), text);
});

layout.run();
periods.run();
names.run();
