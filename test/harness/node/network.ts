/**
 * The address plan of one real-node cluster, from its slot number (1..200). Each slot has
 * its own ranges, so `make demo` and `make test` can run side by side:
 *
 *   host  verso-h<slot> 10.250.<slot>.1/30  <-- veth -->  eth0 10.250.<slot>.2/30  node
 *   pods     10.251.<slot>.0/24  (cni0 bridge, gateway .1, host-local IPAM)
 *   services 10.252.<slot>.0/24  (kube-proxy iptables; `kubernetes` is .1)
 *
 * The host gets routes to the pod and service ranges through the veth, so pod IPs and
 * ClusterIPs answer from the host, as on a kind node from the machine running kind.
 */

export interface NodeNetwork {
  readonly slot: number;
  /** The host end of the veth (the host's name for the link). */
  readonly hostLink: string;
  readonly hostIp: string;
  /** The node's address: the apiserver, kubelet and DNS serve on it. */
  readonly nodeIp: string;
  readonly linkPrefix: number;
  readonly podCidr: string;
  readonly podGateway: string;
  readonly serviceCidr: string;
  /** ClusterIP of the `kubernetes` Service (the first of the range). */
  readonly apiServiceIp: string;
}

export const MAX_SLOT = 200;

export function nodeNetwork(slot: number): NodeNetwork {
  if (!Number.isInteger(slot) || slot < 1 || slot > MAX_SLOT) {
    throw new RangeError(`node network slot must be 1..${MAX_SLOT}, got ${slot}`);
  }
  return {
    slot,
    hostLink: `verso-h${slot}`,
    hostIp: `10.250.${slot}.1`,
    nodeIp: `10.250.${slot}.2`,
    linkPrefix: 30,
    podCidr: `10.251.${slot}.0/24`,
    podGateway: `10.251.${slot}.1`,
    serviceCidr: `10.252.${slot}.0/24`,
    apiServiceIp: `10.252.${slot}.1`,
  };
}
