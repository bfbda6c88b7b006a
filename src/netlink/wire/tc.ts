/**
 * Traffic control requests (RTM_NEWQDISC, RTM_DELQDISC): tbf, the token bucket a lab's rate
 * limits use, its removal, and a minimal netem (only to probe for it). Encoded as `tc` (iproute2 6.1) sends them, rate table
 * included, so the golden test compares them byte for byte.
 * @module
 */
import { type Attr, decodeAttrs, encodeAttrs, nest, raw, strOf, strz, u32 } from './attr.js'
import * as K from './constants.js'
import type { Request } from './messages.js'

export const RTM_NEWQDISC = 36
export const RTM_DELQDISC = 37
const RTM_GETQDISC = 38
const TCA_KIND = 1
const TCA_OPTIONS = 2
const TCA_TBF_PARMS = 1
const TCA_TBF_RTAB = 2
const TCA_TBF_RATE64 = 4
const TCA_TBF_BURST = 6
const TC_H_ROOT = 0xffffffff
const TC_LINKLAYER_ETHERNET = 1
/** tc's time unit: microseconds. */
const TIME_UNITS_PER_SEC = 1_000_000

/** struct tcmsg: family u8, pad, ifindex s32, handle u32, parent u32, info u32. */
function tcmsg(index: number): Buffer {
  const b = Buffer.alloc(20)
  b.writeInt32LE(index, 4)
  b.writeUInt32LE(TC_H_ROOT, 12)
  return b
}

export interface Tbf {
  index: number
  /** Bytes per second. */
  rate: number
  /** Bucket size, bytes. */
  burst: number
  /** How long a packet may wait in the queue, microseconds (sets the limit). */
  latencyUs: number
  /** Kernel ticks per microsecond, from /proc/net/psched (15.625 on current kernels). */
  tickInUsec: number
}

/** tc_calc_xmittime: the time to send `size` bytes at `rate`, in ticks (both steps truncate). */
function xmittime(t: Tbf, size: number): number {
  const us = Math.trunc(TIME_UNITS_PER_SEC * (size / t.rate)) >>> 0
  return Math.trunc(us * t.tickInUsec) >>> 0
}

/**
 * Equivalent: `tc qdisc add dev DEV root tbf rate R burst B latency L`, with tc's defaults
 * (mtu 2047 for the rate table, cell_log 3, no peak rate).
 */
export function tbfQdisc(t: Tbf): Request {
  const mtu = 2047
  let cellLog = 0
  while (mtu >> cellLog > 255) cellLog++
  const rtab = Buffer.alloc(1024)
  for (let i = 0; i < 256; i++) rtab.writeUInt32LE(xmittime(t, (i + 1) << cellLog), i * 4)
  const parms = Buffer.alloc(36)
  // struct tc_ratespec rate: cell_log u8, linklayer u8, overhead u16, cell_align s16, mpu u16, rate u32
  parms.writeUInt8(cellLog, 0)
  parms.writeUInt8(TC_LINKLAYER_ETHERNET, 1)
  parms.writeInt16LE(-1, 4)
  parms.writeUInt32LE(t.rate, 8)
  // peakrate (12 bytes) zero; limit, buffer, mtu
  const limit = Math.trunc((t.rate * t.latencyUs) / TIME_UNITS_PER_SEC + t.burst)
  parms.writeUInt32LE(limit >>> 0, 24)
  parms.writeUInt32LE(xmittime(t, t.burst), 28)
  const opts: Attr[] = [
    raw(TCA_TBF_PARMS, parms),
    u32(TCA_TBF_BURST, t.burst),
    raw(TCA_TBF_RTAB, rtab),
  ]
  return {
    type: RTM_NEWQDISC,
    flags: K.NLM_F_EXCL | K.NLM_F_CREATE,
    body: Buffer.concat([
      tcmsg(t.index),
      encodeAttrs([strz(TCA_KIND, 'tbf'), nest(TCA_OPTIONS, opts)]),
    ]),
  }
}

/** A netem qdisc with no delay (struct tc_netem_qopt, limit 1000): only to probe for netem. */
export function netemQdisc(index: number): Request {
  const qopt = Buffer.alloc(24)
  qopt.writeUInt32LE(1000, 4)
  return {
    type: RTM_NEWQDISC,
    flags: K.NLM_F_EXCL | K.NLM_F_CREATE,
    body: Buffer.concat([
      tcmsg(index),
      encodeAttrs([strz(TCA_KIND, 'netem'), raw(TCA_OPTIONS, qopt)]),
    ]),
  }
}

/** RTM_DELQDISC of the root qdisc: `tc qdisc del dev DEV root`. */
export function delRootQdisc(index: number): Request {
  return { type: RTM_DELQDISC, flags: 0, body: tcmsg(index) }
}

/** Dump request for every qdisc of the namespace: `tc qdisc show`. */
export function getQdiscs(): Request {
  return { type: RTM_GETQDISC, flags: K.NLM_F_DUMP, body: Buffer.alloc(20) }
}

/** A qdisc as a dump or a notification reports it. */
export interface QdiscInfo {
  index: number
  kind: string
  /** The root qdisc of the device (not a child, not ingress). */
  root: boolean
  /** tbf: the rate, bits per second. */
  rate?: number
}

/** Decode the body of an RTM_NEWQDISC / RTM_DELQDISC message. */
export function parseQdisc(body: Buffer): QdiscInfo {
  const index = body.readInt32LE(4)
  const parent = body.readUInt32LE(12)
  const a = decodeAttrs(body.subarray(20))
  const kind = strOf(a.get(TCA_KIND)) ?? ''
  const out: QdiscInfo = { index, kind, root: parent === TC_H_ROOT }
  const opts = a.get(TCA_OPTIONS)
  if (kind === 'tbf' && opts) {
    const o = decodeAttrs(opts)
    const rate64 = o.get(TCA_TBF_RATE64)
    const parms = o.get(TCA_TBF_PARMS)
    // bytes per second in the kernel; rates of 4 GB/s and more come in RATE64
    if (rate64 && rate64.length >= 8) out.rate = Number(rate64.readBigUInt64LE(0)) * 8
    else if (parms && parms.length >= 12) out.rate = parms.readUInt32LE(8) * 8
  }
  return out
}
