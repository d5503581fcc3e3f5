// An app that rotates one Stytch client secret with the construct. Synthesize it with
// `npx cdk synth` in this folder (or `npx tsx app.ts`; CDK_OUTDIR picks the folder):
// nothing is built and no Docker runs, the function is the prebuilt zip.
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { StytchSecretRotation } from '../lib/index.js';

const app = new App();
// Environment-agnostic: synthesizes anywhere, deploys to the account and region of the CLI.
const stack = new Stack(app, 'StytchSecretRotationExample');

// The Stytch project credentials: created here, filled once with put-secret-value.
const credentials = new secretsmanager.Secret(stack, 'StytchCredentials', {
  description: 'Stytch project credentials {"project_id", "secret"} for the rotation function',
});
const key = new kms.Key(stack, 'ClientSecretsKey', { enableKeyRotation: true });
// The client secret to rotate: {"client_id": "...", "client_secret": "..."}.
const billingClient = new secretsmanager.Secret(stack, 'BillingStytchClient', {
  description: 'Stytch M2M client of the billing service',
  encryptionKey: key,
});
const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });

const rotation = new StytchSecretRotation(stack, 'Rotation', {
  credentialsSecret: credentials,
  previousSecretGracePeriod: Duration.hours(2),
  kmsKeys: [key],
  vpc,
  alarmEmail: 'oncall@example.com',
});
rotation.addRotatedSecret(billingClient, { schedule: Duration.days(30), window: Duration.hours(2) });

app.synth();
