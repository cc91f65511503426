/**
 * graphql-no-alias 3.x ships types its package.json "exports" does not expose
 * under NodeNext resolution; this is the part the OpenCTI stub uses.
 */
declare module 'graphql-no-alias' {
  import type { ASTVisitor, ValidationContext } from 'graphql';

  type Permissions = { [key: string]: Permissions | number };

  export function createValidation(config?: {
    permissions?: Permissions;
    defaultAllow?: number;
    directiveName?: string;
  }): { typeDefs: string; validation: (context: ValidationContext) => ASTVisitor };
}
