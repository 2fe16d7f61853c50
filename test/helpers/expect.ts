/** Assertion helpers shared by the unit tests. */
import { expect } from 'chai';
import { ClipperError } from '../../shared/errors.js';

/** Asserts that `fn` throws a ClipperError with `code` (and a message matching `pattern`); returns it. */
export function expectClipperError(fn: () => unknown, code: string, pattern?: RegExp): ClipperError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a throw').to.be.instanceOf(ClipperError);
  const e = caught as ClipperError;
  expect(e.code).to.equal(code);
  if (pattern) expect(e.message).to.match(pattern);
  return e;
}
