// A team's own CDKTF stack: a DynamoDB table, a Step Functions state machine and an HTTP API,
// with the Lambda they share built from a base image by lambda-image-builds' constructs.
import { LocalBackend, TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { DynamodbTable } from "@cdktf/provider-aws/lib/dynamodb-table/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { SfnStateMachine } from "@cdktf/provider-aws/lib/sfn-state-machine/index.js";
import { Apigatewayv2Api } from "@cdktf/provider-aws/lib/apigatewayv2-api/index.js";
import { Apigatewayv2Integration } from "@cdktf/provider-aws/lib/apigatewayv2-integration/index.js";
import { Apigatewayv2Route } from "@cdktf/provider-aws/lib/apigatewayv2-route/index.js";
import { Apigatewayv2Stage } from "@cdktf/provider-aws/lib/apigatewayv2-stage/index.js";
import { LambdaPermission } from "@cdktf/provider-aws/lib/lambda-permission/index.js";
import { BaseImage, ImageBuildEnvironment, LambdaImage, LambdaImageFunction } from "lambda-image-builds";

export interface OrdersStackProps {
  /** The monorepo's root. @default the working directory (where cdktf runs the app: the directory holding cdktf.json) */
  readonly root?: string;
}

export class OrdersStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: OrdersStackProps = {}) {
    super(scope, id);
    // State beside cdktf.out, by a path relative to the stack's directory: cdktf's default local
    // backend writes an absolute path, which would make every checkout's JSON differ.
    new LocalBackend(this, { path: `../../../terraform.${id}.tfstate` });
    new AwsProvider(this, "aws", { region: "eu-west-1" });
    // `project` goes into every AWS name (`shop-orders-…`), so another project's `orders` stack can
    // share the account. This example sits inside another repository, so it names its own root; an
    // app whose repository holds nothing else needs neither (the defaults are the package.json
    // name and the git work tree's top).
    new ImageBuildEnvironment(this, "image-builds", { project: "shop", root: props.root ?? "." });

    const table = new DynamodbTable(this, "orders", {
      name: "orders",
      billingMode: "PAY_PER_REQUEST",
      hashKey: "pk",
      attribute: [{ name: "pk", type: "S" }],
    });

    // The images: the shared package once in a base image, the handler on top of it.
    const common = new BaseImage(this, "common", { dockerfile: "docker/base.Dockerfile", packages: ["packages/common"] });
    const image = new LambdaImage(this, "orders-image", { dockerfile: "services/orders/Dockerfile", context: "services/orders", baseImage: common });
    const handler = new LambdaImageFunction(this, "orders-handler", { image, memorySize: 512, timeout: 30, environment: { TABLE_NAME: table.name } });
    handler.addToRolePolicy({ Action: ["dynamodb:PutItem", "dynamodb:GetItem"], Resource: table.arn });

    // A state machine that records an order through the same function.
    const sfnRole = new IamRole(this, "workflow-role", {
      assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
    });
    new IamRolePolicy(this, "workflow-invoke", {
      role: sfnRole.id,
      policy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "lambda:InvokeFunction", Resource: handler.function.arn }] }),
    });
    new SfnStateMachine(this, "workflow", {
      name: "orders-workflow",
      roleArn: sfnRole.arn,
      definition: JSON.stringify({
        StartAt: "Record",
        States: { Record: { Type: "Task", Resource: "arn:aws:states:::lambda:invoke", Parameters: { FunctionName: handler.function.arn, "Payload.$": "$" }, End: true } },
      }),
    });

    // An HTTP API route to it.
    const api = new Apigatewayv2Api(this, "api", { name: "orders", protocolType: "HTTP" });
    const integration = new Apigatewayv2Integration(this, "api-orders", {
      apiId: api.id,
      integrationType: "AWS_PROXY",
      integrationUri: handler.function.invokeArn,
      payloadFormatVersion: "2.0",
    });
    new Apigatewayv2Route(this, "api-post-order", { apiId: api.id, routeKey: "POST /orders/{id}", target: `integrations/${integration.id}` });
    new Apigatewayv2Stage(this, "api-stage", { apiId: api.id, name: "$default", autoDeploy: true });
    new LambdaPermission(this, "api-invoke", {
      action: "lambda:InvokeFunction",
      functionName: handler.function.functionName,
      principal: "apigateway.amazonaws.com",
      sourceArn: `${api.executionArn}/*/*`,
    });

    new TerraformOutput(this, "api-endpoint", { value: api.apiEndpoint });
  }
}
