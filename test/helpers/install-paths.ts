// The three install paths' templates for the tests that compare them: serverless.yml
// packaged by osls, the SAM template of `npm run package:sar` transformed by AWS's own
// aws-sam-translator, and (cdk/test) the construct's synthesized stack. Each is built
// offline in a temporary directory, so tests packaging at the same time never meet.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Template, World } from './cfn.js';
import { findWorkingTool } from './moto.js';

const run = promisify(execFile);

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OSLS = join(ROOT, 'node_modules/osls/bin/serverless.js');
const BUNDLE = join(ROOT, 'dist/rotate-stytch-secret/index.mjs');

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const STAGE = 'test';
/** What serverless.yml names the function for STAGE; the other paths are given the same name. */
export const FUNCTION_NAME = `stytch-secret-rotation-${STAGE}`;
const SM = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret`;
export const CREDENTIALS_SECRET = `${SM}:stytch-secret-rotation/test/stytch-project-credentials-StUvWx`;
export const EXAMPLE_SECRET = `${SM}:stytch-secret-rotation/test/example-stytch-client-YzAbCd`;
export const TABLE_NAME = 'stytch-secret-rotation-test-RotationStateTable-X5';

/** Physical ids of the stack's resources, the same whichever path created them. */
export const WORLD: World = {
  refs: {
    StytchCredentialsSecret: CREDENTIALS_SECRET,
    ExampleStytchClientSecret: EXAMPLE_SECRET,
    RotationAlertsTopic: `arn:aws:sns:${REGION}:${ACCOUNT}:stytch-secret-rotation-test-RotationAlertsTopic-X1`,
    RotateStytchSecretLambdaFunction: FUNCTION_NAME,
    RotateStytchSecretRole: 'stytch-secret-rotation-test-RotateStytchSecretRole-X3',
    RotationStateTable: TABLE_NAME,
    RetirementSweepRule: 'stytch-secret-rotation-test-RetirementSweepRule-X6',
  },
  getAtts: {
    'RotateStytchSecretLambdaFunction.Arn': `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${FUNCTION_NAME}`,
    'RotateStytchSecretLogGroup.Arn': `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/${FUNCTION_NAME}:*`,
    'RotateStytchSecretRole.Arn': `arn:aws:iam::${ACCOUNT}:role/stytch-secret-rotation-test-RotateStytchSecretRole-X3`,
    'RotationFailureRule.Arn': `arn:aws:events:${REGION}:${ACCOUNT}:rule/stytch-secret-rotation-test-RotationFailureRule-X2`,
    'RotateStytchSecretErrorsAlarm.Arn': `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${FUNCTION_NAME}-errors`,
    'RotationStateTable.Arn': `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE_NAME}`,
    'RetirementSweepRule.Arn': `arn:aws:events:${REGION}:${ACCOUNT}:rule/stytch-secret-rotation-test-RetirementSweepRule-X6`,
    'RotationAlertsKey.Arn': `arn:aws:kms:${REGION}:${ACCOUNT}:key/9abc0123-9abc-0123-4567-9abc01234567`,
  },
  pseudo: { 'AWS::AccountId': ACCOUNT, 'AWS::Region': REGION, 'AWS::Partition': 'aws', 'AWS::StackName': 'stytch-secret-rotation-test' },
};

export async function ensureBundle(): Promise<void> {
  if (!existsSync(BUNDLE)) await run('npm', ['run', 'build'], { cwd: ROOT });
}

const failure = (what: string) => (error: { stdout?: string; stderr?: string }) => {
  throw new Error(`${what} failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
};

/** serverless.yml as `osls package --stage test` writes it, run in a copy of the project (osls stages in .serverless/). */
export async function packageServerless(): Promise<{ dir: string; template: Template }> {
  const work = mkdtempSync(join(tmpdir(), 'stytch-rotation-osls-'));
  const project = join(work, 'project');
  for (const entry of ['package.json', 'serverless.yml', 'infra', 'dist/rotate-stytch-secret']) {
    cpSync(join(ROOT, entry), join(project, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'), 'dir');
  const dir = join(work, 'package');
  await run(process.execPath, [OSLS, 'package', '--stage', STAGE, '--region', REGION, '--package', dir], { cwd: project }).catch(
    failure('osls package'),
  );
  return { dir, template: JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template };
}

/** `npm run package:sar` into a temporary directory: the SAR folder and the CDK construct's assets. */
export async function packageInstallPaths(args: string[] = ['--author', 'example-publisher']): Promise<{ sar: string; cdkAssets: string }> {
  const work = mkdtempSync(join(tmpdir(), 'stytch-rotation-sar-test-'));
  const sar = join(work, 'sar');
  const cdkAssets = join(work, 'cdk-assets');
  await run(process.execPath, [join(ROOT, 'scripts/package-sar.mjs'), '--skip-build', '--out', sar, '--cdk-assets', cdkAssets, ...args], {
    cwd: ROOT,
  }).catch(failure('package:sar'));
  return { sar, cdkAssets };
}

// Translates a SAM template the way CloudFormation's AWS::Serverless transform does,
// offline: no managed policy is looked up (the template names none).
const TRANSLATE = `
import json, sys
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
json.dump(Translator(managed_policy_map={}, sam_parser=Parser()).translate(sam_template=json.load(sys.stdin), parameter_values={}), sys.stdout)
`;

/** The image's Python with aws-sam-translator; undefined when it is missing. */
export const findSamTranslator = (): Promise<string | undefined> => findWorkingTool('python', ['-c', 'import samtranslator']);

/**
 * The SAM template as CloudFormation deploys it: first `sam package` (the local CodeUri
 * becomes the S3 location it uploads the zip to), then the transform.
 */
export async function translateSam(python: string, sam: Template, codeUri = 's3://sar-artifacts-bucket/rotateStytchSecret.zip'): Promise<Template> {
  const packaged = structuredClone(sam) as Template & { Resources: Record<string, { Properties: Record<string, unknown> }> };
  const fn = packaged.Resources.RotateStytchSecretLambdaFunction;
  if (!fn) throw new Error('the SAM template has no RotateStytchSecretLambdaFunction');
  fn.Properties.CodeUri = codeUri;
  const child = execFile(python, ['-c', TRANSLATE], { env: { ...process.env, AWS_DEFAULT_REGION: REGION }, maxBuffer: 16 * 1024 * 1024 });
  const output = new Promise<string>((done, fail) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('close', (code) => (code === 0 ? done(stdout) : fail(new Error(`aws-sam-translator failed (${code}):\n${stderr}`))));
  });
  child.stdin?.end(JSON.stringify(packaged));
  return JSON.parse(await output) as Template;
}

export const ROTATED_SECRET = `${SM}:prod/app-one/stytch-client-AbCdEf`;
export const OTHER_CREDENTIALS = `${SM}:other-project/stytch-credentials-MnOpQr`;
export const EXISTING_CREDENTIALS = `${SM}:stytch-secret-rotation/test/stytch-project-credentials-RtNdQz`;
export const KMS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
export const EXTRA_KMS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/aaaa1111-2222-3333-4444-555566667777`;
export const SUBNETS = ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'];
export const SECURITY_GROUP = 'sg-0123456789abcdef0';
export const BOUNDARY = `arn:aws:iam::${ACCOUNT}:policy/platform-boundary`;

/** Template parameters with every optional part on (the defaults leave them all off). */
export const EVERY_OPTION: Record<string, string> = {
  RotatedSecretArns: ROTATED_SECRET,
  RotatedSecretTagValue: 'stytch-prod',
  ExtraCredentialsSecretArns: OTHER_CREDENTIALS,
  KmsKeyArn: KMS_KEY,
  ExtraKmsKeyArns: EXTRA_KMS_KEY,
  AlarmEmail: 'rotation-alerts@example.com',
  CreateExampleSecret: 'true',
  ReservedConcurrency: '10',
  SubnetIds: SUBNETS.join(','),
  SecurityGroupIds: SECURITY_GROUP,
  PermissionsBoundaryArn: BOUNDARY,
  PreviousSecretGraceSeconds: '600',
  SweepSchedule: 'rate(10 minutes)',
  LogRetentionInDays: '30',
};
