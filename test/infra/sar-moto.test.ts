// The Serverless Application Repository app deployed the way SAR deploys it, into
// moto_server: `sam package` (the zip to S3, its URI as CodeUri), the AWS::Serverless
// transform (aws-sam-translator, as CloudFormation runs it), then a CloudFormation
// stack with the application's parameters, created with the real aws CLI. What it
// created is read back with the AWS SDK. (moto creates no alarm, topic policy or
// secret: deploy-moto.test.ts lists those, and sar.test.ts pins them in the template.)
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStackResourcesCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetRolePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, run } from '../helpers/aws-cli.js';
import type { Template } from '../helpers/cfn.js';
import { ensureBundle, findSamTranslator, packageInstallPaths, translateSam } from '../helpers/install-paths.js';
import { findAwsCli, findMotoServer, type MotoServer, startMotoServer, toolGate } from '../helpers/moto.js';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012'; // moto's account
const STACK = 'stytch-secret-rotation-sar';
const FUNCTION_NAME = 'billing-stytch-rotation';
const EXISTING_CREDENTIALS = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:stytch/credentials-AbCdEf`;

const [motoPath, cliPath, python] = await Promise.all([findMotoServer(), findAwsCli(), findSamTranslator()]);
const gate = toolGate('moto_server, the aws CLI and aws-sam-translator', motoPath && cliPath && python);

describe.skipIf(gate.skip)(gate.title('SAR app deployed into moto_server'), () => {
  let moto: MotoServer;
  let work: string;
  let sarWork: string;
  let zipSha256: string;

  beforeAll(async () => {
    gate.assert();
    moto = await startMotoServer(motoPath ?? '');
    work = mkdtempSync(join(tmpdir(), 'stytch-rotation-sar-moto-'));
    await ensureBundle();
    const { sar } = await packageInstallPaths();
    sarWork = join(sar, '..');
    zipSha256 = createHash('sha256').update(readFileSync(join(sar, 'rotateStytchSecret.zip'))).digest('base64');
    const aws = async (...args: string[]) => {
      const result = await run(cliPath ?? '', ['--endpoint-url', moto.url, '--region', REGION, '--output', 'json', ...args], {
        ...cliEnv(cliPath ?? ''),
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
      });
      expect(result.code, `aws ${args.join(' ')}: ${result.stderr}`).toBe(0);
      return result.stdout;
    };

    // sam package: the zip to the artifacts bucket, its S3 URI as CodeUri.
    await aws('s3api', 'create-bucket', '--bucket', 'sar-artifacts');
    await aws('s3', 'cp', join(sar, 'rotateStytchSecret.zip'), 's3://sar-artifacts/rotateStytchSecret.zip');
    const sam = JSON.parse(readFileSync(join(sar, 'template.json'), 'utf8')) as Template;
    const translated = await translateSam(python ?? '', sam, 's3://sar-artifacts/rotateStytchSecret.zip');
    const file = join(work, 'template.json');
    writeFileSync(file, JSON.stringify(translated));

    await aws(
      'cloudformation', 'create-stack', '--stack-name', STACK, '--template-body', `file://${file}`, '--capabilities', 'CAPABILITY_IAM',
      '--parameters', `ParameterKey=FunctionName,ParameterValue=${FUNCTION_NAME}`, `ParameterKey=ExistingCredentialsSecretArn,ParameterValue=${EXISTING_CREDENTIALS}`,
      'ParameterKey=PreviousSecretGraceSeconds,ParameterValue=900',
    );
    await aws('cloudformation', 'wait', 'stack-create-complete', '--stack-name', STACK);
  }, 180_000);

  afterAll(async () => {
    await moto?.stop();
    for (const dir of [work, sarWork]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates the function from the uploaded zip, named and configured by the application\'s parameters', async () => {
    // Prepare
    const config = { region: REGION, endpoint: moto.url, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const lambda = new LambdaClient(config);
    const iam = new IAMClient(config);
    const cloudFormation = new CloudFormationClient(config);

    // Act
    const fn = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: FUNCTION_NAME }));
    const roleName = fn.Role?.split('/').pop();
    const policy = await iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'rotate-stytch-client-secrets' }));
    const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: STACK }));
    const { StackResources } = await cloudFormation.send(new DescribeStackResourcesCommand({ StackName: STACK }));
    for (const client of [lambda, iam, cloudFormation]) client.destroy();

    // Assess
    expect(Stacks?.[0]?.StackStatus).toBe('CREATE_COMPLETE');
    expect(fn).toMatchObject({ Runtime: 'nodejs22.x', Handler: 'dist/rotate-stytch-secret/index.handler', MemorySize: 256, Timeout: 60 });
    expect(fn.CodeSha256).toBe(zipSha256);
    expect(fn.Environment?.Variables).toMatchObject({ STYTCH_CREDENTIALS_SECRET_ID: EXISTING_CREDENTIALS });
    expect(String(fn.Environment?.Variables?.PREVIOUS_SECRET_GRACE_SECONDS)).toBe('900');
    // The rotation condition names this function (moto returns the inline policy as a Python repr).
    const document = decodeURIComponent(policy.PolicyDocument ?? '');
    expect(document).toContain(`arn:aws:lambda:${REGION}:${ACCOUNT}:function:${FUNCTION_NAME}`);
    expect(document).toContain(EXISTING_CREDENTIALS);
    const created = new Set((StackResources ?? []).map((resource) => resource.LogicalResourceId));
    for (const id of ['RotateStytchSecretLambdaFunction', 'RotateStytchSecretRole', 'RotationStateTable', 'RetirementSweepRule', 'RotateStytchSecretInvokePermission', 'RotationAlertsTopic']) {
      expect(created.has(id), id).toBe(true);
    }
  });
});
