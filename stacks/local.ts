// The local driver's stack: Terraform built-ins only (terraform_data), so it applies anywhere with
// no provider download. It makes the app directory and exposes where the app lives and answers.
import { DataResource, TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { applyBackend, type BackendProps } from "./backend.js";

export interface LocalStackProps extends BackendProps {
  app: string;
  appDir: string;
  appPort: number;
}

export class LocalStack extends TerraformStack {
  constructor(scope: Construct, name: string, props: LocalStackProps) {
    super(scope, name);
    applyBackend(this, name, props);

    const dir = new DataResource(this, "app_directory", {
      input: { app: props.app, app_dir: props.appDir },
      provisioners: [
        // Paths are passed through the environment, never spliced into the command.
        { type: "local-exec", command: 'mkdir -p "$APP_DIR" && chmod 700 "$APP_DIR"', environment: { APP_DIR: props.appDir } },
      ],
    });

    new TerraformOutput(this, "app_dir", { value: dir.output.lookup("app_dir") });
    new TerraformOutput(this, "url", { value: `http://127.0.0.1:${props.appPort}` });
    new TerraformOutput(this, "app", { value: props.app });
  }
}

export function defineLocalStack(app: object, name: string, props: LocalStackProps): void {
  new LocalStack(app as Construct, name, props);
}
