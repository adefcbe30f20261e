-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_ResourceServer" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "identifier" TEXT NOT NULL,
    "name" TEXT,
    "scopes" TEXT NOT NULL,
    "scopeDescriptions" TEXT NOT NULL DEFAULT '{}',
    "accessTokenTtl" INTEGER NOT NULL,
    "signingAlg" TEXT NOT NULL DEFAULT 'RS256',
    "enforceRoles" BOOLEAN NOT NULL DEFAULT false,
    "rolesClaim" BOOLEAN NOT NULL DEFAULT false,
    "claimMappings" TEXT NOT NULL DEFAULT '{}',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_ResourceServer" ("accessTokenTtl", "createdAt", "enforceRoles", "id", "identifier", "name", "rolesClaim", "scopeDescriptions", "scopes", "signingAlg", "updatedAt") SELECT "accessTokenTtl", "createdAt", "enforceRoles", "id", "identifier", "name", "rolesClaim", "scopeDescriptions", "scopes", "signingAlg", "updatedAt" FROM "ResourceServer";
DROP TABLE "ResourceServer";
ALTER TABLE "new_ResourceServer" RENAME TO "ResourceServer";
CREATE UNIQUE INDEX "ResourceServer_identifier_key" ON "ResourceServer"("identifier");
CREATE TABLE "new_User" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "passwordHash" TEXT,
    "name" TEXT,
    "emailVerified" BOOLEAN NOT NULL DEFAULT false,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "termsAcceptedAt" DATETIME,
    "attributes" TEXT NOT NULL DEFAULT '{}',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_User" ("createdAt", "disabled", "email", "emailVerified", "id", "name", "passwordHash", "termsAcceptedAt", "updatedAt") SELECT "createdAt", "disabled", "email", "emailVerified", "id", "name", "passwordHash", "termsAcceptedAt", "updatedAt" FROM "User";
DROP TABLE "User";
ALTER TABLE "new_User" RENAME TO "User";
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
