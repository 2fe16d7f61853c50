import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';
import fc from 'fast-check';

import {
  ClipperError,
  ERROR_CODE_HEADER,
  ERROR_CODES,
  ERROR_STATUS_HEADER,
  ERROR_TEXT_HEADER,
  isErrorCode,
  isOverloadRefusal,
  SHEDDABLE_HEADER,
  type ErrorCode,
} from '../../shared/errors.js';
import { errorFromReply, errorHeaders } from '../../shared/nats.js';
import type { Msg } from 'nats';

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

describe('errors', () => {
  it('errors - every code is CLIPPER_ERR_ followed by upper-case words', () => {
    expect(CODES.length).to.be.greaterThan(0);
    for (const code of CODES) expect(code).to.match(/^CLIPPER_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/);
  });

  it('errors - every code has a 4xx/5xx status, a message and a boolean retryable', () => {
    for (const code of CODES) {
      const entry = ERROR_CODES[code];
      expect(entry.status, code).to.be.within(400, 599);
      expect(Number.isInteger(entry.status), code).to.equal(true);
      expect(entry.message, code).to.be.a('string').and.not.equal('');
      expect(entry.retryable, code).to.be.a('boolean');
    }
  });

  it('errors - only 503/504 codes are retryable, and no 4xx code is', () => {
    for (const code of CODES) {
      if (ERROR_CODES[code].retryable) expect(ERROR_CODES[code].status, code).to.be.oneOf([503, 504]);
      if (ERROR_CODES[code].status < 500) expect(ERROR_CODES[code].retryable, code).to.equal(false);
    }
    expect(ERROR_CODES.CLIPPER_ERR_QUERY_EXPIRED.retryable).to.equal(true);
    expect(ERROR_CODES.CLIPPER_ERR_QUEUE_FULL.retryable).to.equal(true);
    expect(ERROR_CODES.CLIPPER_ERR_BACKLOGGED.retryable).to.equal(true);
    expect(ERROR_CODES.CLIPPER_ERR_MODEL_FAILED.retryable).to.equal(false);
  });

  it('errors - the messages are distinct per code', () => {
    const messages = CODES.map((c) => ERROR_CODES[c].message);
    expect(new Set(messages).size).to.equal(messages.length);
  });

  it('errors - isErrorCode accepts registered codes only', () => {
    for (const code of CODES) expect(isErrorCode(code)).to.equal(true);
    for (const no of ['CLIPPER_ERR_NOPE', 'clipper_err_internal', '', 'toString', '__proto__', 'constructor', 42, null, undefined]) {
      expect(isErrorCode(no), String(no)).to.equal(false);
    }
  });

  it('errors - the overload refusals are QUEUE_FULL and BACKLOGGED, both 503 and retryable', () => {
    expect(CODES.filter(isOverloadRefusal).sort()).to.deep.equal(['CLIPPER_ERR_BACKLOGGED', 'CLIPPER_ERR_QUEUE_FULL']);
    for (const code of CODES.filter(isOverloadRefusal)) expect(ERROR_CODES[code]).to.include({ status: 503, retryable: true });
    expect(isOverloadRefusal(undefined)).to.equal(false);
  });

  it('errors - a ClipperError carries its code, status, retryable hint and message', () => {
    for (const code of CODES) {
      const plain = new ClipperError(code);
      expect(plain).to.be.instanceOf(Error);
      expect(plain.name).to.equal('ClipperError');
      expect(plain.code).to.equal(code);
      expect(plain.status).to.equal(ERROR_CODES[code].status);
      expect(plain.retryable).to.equal(ERROR_CODES[code].retryable);
      expect(plain.message).to.equal(ERROR_CODES[code].message);
      expect(plain.title).to.equal(ERROR_CODES[code].message);

      const withCause = new ClipperError(code, 'because');
      expect(withCause.message).to.equal(`${ERROR_CODES[code].message}: because`);
      expect(withCause.title).to.equal(ERROR_CODES[code].message);
    }
  });

  it('errors - toJson gives the error title, code, cause and retry hint', () => {
    const e = new ClipperError('CLIPPER_ERR_APP_NOT_FOUND', 'digits');
    expect(e.toJson()).to.deep.equal({
      error: 'application not found',
      code: 'CLIPPER_ERR_APP_NOT_FOUND',
      cause: 'application not found: digits',
      retryable: false,
    });
    expect(JSON.parse(JSON.stringify(e.toJson()))).to.deep.equal(e.toJson());
  });

  it('errors - uses the nats.js micro service-error headers plus its own code header', () => {
    expect(ERROR_TEXT_HEADER).to.equal('Nats-Service-Error');
    expect(ERROR_STATUS_HEADER).to.equal('Nats-Service-Error-Code');
    expect(ERROR_CODE_HEADER).to.equal('Clipper-Error');
  });

  it('errors - an overload refusal\'s sheddable hint crosses NATS in Clipper-Sheddable, and is absent when not known', () => {
    const across = (err: ClipperError): ClipperError => errorFromReply({ headers: errorHeaders(err) } as unknown as Msg)!;
    for (const sheddable of [true, false]) {
      const err = ClipperError.withoutStack('CLIPPER_ERR_QUEUE_FULL', 'busy');
      err.sheddable = sheddable;
      expect(errorHeaders(err).get(SHEDDABLE_HEADER)).to.equal(sheddable ? '1' : '0');
      const back = across(err);
      expect(back).to.include({ code: 'CLIPPER_ERR_QUEUE_FULL', sheddable });
      expect(back.message).to.equal(err.message);
    }
    const unknown = ClipperError.withoutStack('CLIPPER_ERR_BACKLOGGED');
    expect(errorHeaders(unknown).has(SHEDDABLE_HEADER)).to.equal(false);
    expect(across(unknown).sheddable).to.equal(undefined);
  });

  it('errors - fromWire rebuilds any error from its code and text', () => {
    fc.assert(
      fc.property(fc.constantFrom(...CODES), fc.option(fc.string({ minLength: 1, maxLength: 40 }), { nil: undefined }), (code, cause) => {
        const sent = new ClipperError(code, cause);
        const got = ClipperError.fromWire(sent.code, sent.message);
        expect(got).to.be.instanceOf(ClipperError);
        expect(got.code).to.equal(sent.code);
        expect(got.status).to.equal(sent.status);
        expect(got.retryable).to.equal(sent.retryable);
        expect(got.message).to.equal(sent.message);
        expect(got.toJson()).to.deep.equal(sent.toJson());
      }),
    );
  });

  it('errors - fromWire maps unknown or missing codes to CLIPPER_ERR_INTERNAL, keeping the text', () => {
    const unknown = ClipperError.fromWire('SOMETHING_ELSE', 'boom');
    expect(unknown.code).to.equal('CLIPPER_ERR_INTERNAL');
    expect(unknown.status).to.equal(500);
    expect(unknown.message).to.equal('boom');
    const missing = ClipperError.fromWire(undefined, 'no code');
    expect(missing.code).to.equal('CLIPPER_ERR_INTERNAL');
    expect(missing.message).to.equal('no code');
  });

  it('errors - fromWire without text uses the code\'s message', () => {
    expect(ClipperError.fromWire('CLIPPER_ERR_QUEUE_FULL', undefined).message).to.equal('overloaded: refused before it could miss its deadline');
    expect(ClipperError.fromWire('CLIPPER_ERR_QUEUE_FULL', '').message).to.equal('overloaded: refused before it could miss its deadline');
    expect(ClipperError.fromWire(undefined, undefined).message).to.equal('internal error');
  });

  it('errors - from keeps a ClipperError as the same object', () => {
    const e = new ClipperError('CLIPPER_ERR_QUEUE_FULL', 'x');
    expect(ClipperError.from(e)).to.equal(e);
    expect(ClipperError.from(e, 'CLIPPER_ERR_MODEL_FAILED')).to.equal(e);
  });

  it('errors - from wraps other errors and thrown values with the fallback code', () => {
    const wrapped = ClipperError.from(new TypeError('bad thing'));
    expect(wrapped).to.be.instanceOf(ClipperError);
    expect(wrapped.code).to.equal('CLIPPER_ERR_INTERNAL');
    expect(wrapped.message).to.equal('internal error: bad thing');

    const failed = ClipperError.from(new Error('model blew up'), 'CLIPPER_ERR_MODEL_FAILED');
    expect(failed.code).to.equal('CLIPPER_ERR_MODEL_FAILED');
    expect(failed.message).to.equal('model evaluation failed: model blew up');

    expect(ClipperError.from('a string').message).to.equal('internal error: a string');
    expect(ClipperError.from(42).message).to.equal('internal error: 42');
    expect(ClipperError.from(undefined).code).to.equal('CLIPPER_ERR_INTERNAL');
  });

  it('errors - docs/protocol.md lists every error code', () => {
    const url = new URL('../../../docs/protocol.md', import.meta.url);
    const path = fileURLToPath(url);
    expect(existsSync(path), `${path} is missing`).to.equal(true);
    const doc = readFileSync(path, 'utf8');
    const missing = CODES.filter((code) => !new RegExp(`\\b${code}\\b`).test(doc));
    expect(missing, 'codes missing from docs/protocol.md').to.deep.equal([]);
  });
});
