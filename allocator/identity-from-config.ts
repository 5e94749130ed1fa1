import { EC2Client } from '@aws-sdk/client-ec2';
import { IdentityConfig } from './allocator-config';
import { SpareRegistry } from '../store/replacement';
import { Ec2FleetMembership, Ec2IdentityVerifier, awsIdentityCertificate } from './ec2-identity';
import { FleetTokenVerifier, VmIdentityVerifier } from './identity';

export function identityVerifierFor(config: IdentityConfig, spares?: SpareRegistry): VmIdentityVerifier {
  if (config.mode === 'token') return new FleetTokenVerifier(config.fleetToken);
  return new Ec2IdentityVerifier({
    region: config.region,
    accountId: config.accountId,
    publicKey: awsIdentityCertificate(config.region).publicKey,
    fleet: new Ec2FleetMembership(new EC2Client({ region: config.region }), config.fleet, spares),
    fallback: config.fleetToken ? new FleetTokenVerifier(config.fleetToken) : undefined,
  });
}
