import type { FastifyRequest } from 'fastify';

/**
 * Prepares a request for the embedded provider, which builds every URL it advertises (discovery,
 * registration_client_uri, form actions) from the Host and X-Forwarded-* headers and reads the
 * client address from X-Forwarded-For. Those are set here, from the issuer and from the address
 * Fastify computed with TRUST_PROXY, replacing whatever the client sent: a request for another
 * Host still gets the issuer's URLs, and a client cannot choose its address.
 */
export function pinToIssuer(request: FastifyRequest, issuer: URL): void {
  const ip = request.ip;
  const headers = request.raw.headers;
  headers.host = issuer.host;
  headers['x-forwarded-proto'] = issuer.protocol.slice(0, -1);
  headers['x-forwarded-for'] = ip;
  delete headers['x-forwarded-host'];
}
