/**
 * A packet capture of one interface of a namespace, as a pcap stream (what Wireshark opens).
 * @module
 */
import type { Readable } from 'node:stream'

export interface CaptureOpts {
  /** Stop after this long. */
  seconds: number
  /** Stop after this many packets. */
  maxPackets: number
}

/** `ns` '' = the root namespace. The stream ends when the capture does. */
export function capture(ns: string, ifname: string, o: CaptureOpts): Readable {
  void ns
  void ifname
  void o
  throw new Error('not yet')
}
