-- CreateTable
CREATE TABLE "Role" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "permissions" TEXT NOT NULL DEFAULT '{}',
    "builtIn" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "UserRole" (
    "userId" TEXT NOT NULL,
    "roleId" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("userId", "roleId"),
    CONSTRAINT "UserRole_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "UserRole_roleId_fkey" FOREIGN KEY ("roleId") REFERENCES "Role" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

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
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_ResourceServer" ("accessTokenTtl", "createdAt", "id", "identifier", "name", "scopeDescriptions", "scopes", "signingAlg", "updatedAt") SELECT "accessTokenTtl", "createdAt", "id", "identifier", "name", "scopeDescriptions", "scopes", "signingAlg", "updatedAt" FROM "ResourceServer";
DROP TABLE "ResourceServer";
ALTER TABLE "new_ResourceServer" RENAME TO "ResourceServer";
CREATE UNIQUE INDEX "ResourceServer_identifier_key" ON "ResourceServer"("identifier");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE UNIQUE INDEX "Role_name_key" ON "Role"("name");

-- CreateIndex
CREATE INDEX "UserRole_roleId_idx" ON "UserRole"("roleId");
